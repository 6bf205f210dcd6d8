"""A synthetic crowd whose workers' kinds are known, so the blocking rule can be watched.

Three categories with uneven frequencies; 1,000 items, each answered by 10 different
workers. Workers come in kinds: good (right 90% of the time), mediocre (75%), and two
kinds of spammers (answering at random; always answering the most frequent category).
Wrong answers of good and mediocre workers fall on the other categories at random.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bench.quality_replay import Dataset

CATEGORIES = ["cat", "dog", "fox"]
CLASS_SHARES = [0.5, 0.3, 0.2]


@dataclass(frozen=True)
class Kind:
    name: str
    workers: int
    accuracy: float | None  # None: a spammer
    always: str | None = None  # a spammer that always answers this category
    # How many answers it gives relative to the others (spammers are busy).
    activity: float = 1.0


KINDS = [
    Kind("good", 20, 0.9),
    Kind("mediocre", 20, 0.75),
    Kind("random spammer", 5, None, activity=2.0),
    Kind("one-category spammer", 5, None, always="cat", activity=2.0),
]


def worker_kind(worker: str) -> str:
    """The kind a synthetic worker's name says ("good-3" -> "good")."""
    return worker.rsplit("-", 1)[0]


def synthetic_crowd(seed: int, items: int = 1000, answers_per_item: int = 10) -> Dataset:
    rng = random.Random(f"synthetic-{seed}")
    workers = [(f"{kind.name}-{i}", kind) for kind in KINDS for i in range(kind.workers)]
    weights = [kind.activity for _, kind in workers]
    answers: list[tuple[str, str, str]] = []
    truth: dict[str, str] = {}
    for n in range(items):
        item = f"item-{n}"
        true = rng.choices(CATEGORIES, CLASS_SHARES)[0]
        truth[item] = true
        chosen: dict[str, Kind] = {}
        while len(chosen) < answers_per_item:
            name, kind = rng.choices(workers, weights)[0]
            chosen[name] = kind
        for name, kind in chosen.items():
            if kind.always is not None:
                label = kind.always
            elif kind.accuracy is None:
                label = rng.choice(CATEGORIES)
            elif rng.random() < kind.accuracy:
                label = true
            else:
                label = rng.choice([c for c in CATEGORIES if c != true])
            answers.append((item, name, label))
    return Dataset("synthetic", answers, truth, list(CATEGORIES))
