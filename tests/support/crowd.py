"""A simulated crowd for the end-to-end quality run (tests/e2e/test_quality.py): items with
a true category, workers of known accuracies, and each worker's answer to each item drawn
once, up front, so that the run over HTTP and the replay (`bench.quality_replay`, the
task-store's own quality code without the stack) ask the very same answers and differ
only in who answers what, and in which order."""

from __future__ import annotations

import random
from dataclasses import dataclass

from bench.quality_replay import Dataset, ReplaySettings, replay, replay_scores
from humantask_taskstore import quality

CATEGORIES = ["cat", "dog", "bird"]


@dataclass(frozen=True)
class SimulatedWorker:
    name: str
    # How often it answers the true category; otherwise one of the others, at random.
    accuracy: float


@dataclass(frozen=True)
class Crowd:
    truth: dict[str, str]  # item -> its true category
    answers: dict[tuple[str, str], str]  # (item, worker) -> what the worker answers
    workers: list[SimulatedWorker]

    def dataset(self) -> Dataset:
        """The crowd as `make quality-sim` reads a data set: every answer, every truth."""
        rows = [(item, worker, label) for (item, worker), label in self.answers.items()]
        return Dataset("e2e-crowd", rows, dict(self.truth), list(CATEGORIES))


def simulated_crowd(items: int, workers: list[SimulatedWorker], seed: int = 7) -> Crowd:
    rng = random.Random(seed)
    truth = {f"item-{n:04d}": rng.choice(CATEGORIES) for n in range(items)}
    answers: dict[tuple[str, str], str] = {}
    for item, true in truth.items():
        for worker in workers:
            if rng.random() < worker.accuracy:
                answers[(item, worker.name)] = true
            else:
                answers[(item, worker.name)] = rng.choice([c for c in CATEGORIES if c != true])
    return Crowd(truth, answers, workers)


def predicted_accuracy(
    crowd: Crowd, rule: quality.CompletionRule, gold_share: float, seeds: tuple[int, ...]
) -> list[float]:
    """The replay's accuracy on the regular items, one per seed (each seed: other gold
    items, another order)."""
    dataset = crowd.dataset()
    return [
        replay_scores(dataset, replay(dataset, ReplaySettings(rule, gold_share, seed))).accuracy
        for seed in seeds
    ]
