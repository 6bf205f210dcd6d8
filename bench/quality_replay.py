"""Replaying a crowd through the product's quality model, as the task-store would run it.

One customer (the data set), its tasks answered one after another by the workers who
answered them in the data, until the completion rule fires. Every decision is the
product's own code (`humantask_taskstore.quality`): the posterior, the calibration and its
fit, the completion rule, gold scoring, blocking, the increments learnt from each
completed task. Only the order of events and the store (dicts updated by `quality.apply`,
as MongoDB's `$inc` would) are this module's.

How the replay mirrors the product:
- A share of the items with a true label become gold tasks; every answer the data has on
  them is a scored gold answer (a gold task is never completed; each worker answers it at
  most once).
- The regular items are answered in a random order, each item's answers in a random
  order, one answer at a time, until the completion rule fires; the item's remaining
  answers are never asked for. An item whose answers run out first ends with what it has
  (the product would wait for another worker; the data has none).
- Gold answers are interleaved as the product serves them: a worker's first gold answer
  comes just before its first regular one, the rest spread evenly over its regular ones
  (the product serves one before the first regular task and then GOLD_RATE of claims).
- Blocking applies as it happens: a blocked worker's later answers (gold or regular) are
  never asked for, and its answers on the open item stop counting (the item waits for
  more answers).
- A worker answers an item at most once: a second answer in the data is skipped.
- The calibration is refitted from the gold counters every `CALIBRATION_REFIT_EVERY`
  gold answers, as the task-store would.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from humantask_taskstore import quality
from humantask_taskstore.quality.calibration import CALIBRATION_REFIT_EVERY


@dataclass(frozen=True)
class Dataset:
    name: str
    # (item, worker, label), as published
    answers: list[tuple[str, str, str]]
    truth: dict[str, str]
    categories: list[str]

    @property
    def items(self) -> list[str]:
        return list(dict.fromkeys(item for item, _, _ in self.answers))

    @property
    def answers_per_item(self) -> float:
        return len(self.answers) / len(self.items)


def _sort_key(label: str) -> tuple[int, float | str]:
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


def load_dataset(directory: Path) -> Dataset:
    """A data set folder: answers.csv (item,worker,label) and gold.csv (item,label)."""
    with (directory / "answers.csv").open(newline="", encoding="utf-8") as f:
        answers = [(row["item"], row["worker"], row["label"]) for row in csv.DictReader(f)]
    truth: dict[str, str] = {}
    gold_path = directory / "gold.csv"
    if gold_path.exists():
        with gold_path.open(newline="", encoding="utf-8") as f:
            truth = {row["item"]: row["label"] for row in csv.DictReader(f)}
    labels = {label for _, _, label in answers} | set(truth.values())
    return Dataset(directory.name, answers, truth, sorted(labels, key=_sort_key))


@dataclass(frozen=True)
class ReplaySettings:
    rule: quality.CompletionRule
    gold_share: float = 0.1
    seed: int = 1
    params: quality.QualityParams = quality.DEFAULT_PARAMS
    blocking: quality.BlockingParams = quality.DEFAULT_BLOCKING
    # Off: nobody is blocked (to show what blocking does).
    block: bool = True


@dataclass
class ItemResult:
    category: str | None  # None: every answer was discarded (its workers were blocked)
    confidence: float
    asked: int  # answers asked for (including any discarded by a block)
    counted: int
    ran_out: bool  # the data had no more answers before the rule fired
    raw_confidence: float = 0.0  # the raw posterior's (before calibration)
    dissent: int = 0  # counted answers not for the category


@dataclass
class Block:
    worker: str
    event: int  # the position in the replay's event stream
    gold_answers: int
    gold_correct: int
    regular_answers: int  # regular answers asked of it before the block


@dataclass
class ReplayResult:
    items: dict[str, ItemResult]
    gold_items: set[str]
    blocks: list[Block] = field(default_factory=list)
    calibration: quality.Calibration = quality.IDENTITY


def split_gold(dataset: Dataset, share: float, seed: int) -> set[str]:
    """The items that become gold tasks: a share of those with a true label."""
    rng = random.Random(f"gold-{seed}")
    labelled = sorted(item for item in dataset.items if item in dataset.truth)
    return set(rng.sample(labelled, round(share * len(labelled))))


# An event of the stream: ("gold", item, worker, label) or ("answer", item, worker, label),
# with ("end", item, "", "") closing each regular item.
Event = tuple[str, str, str, str]


def event_stream(dataset: Dataset, gold: set[str], seed: int) -> list[Event]:
    """The order the replay asks for answers in (module doc)."""
    rng = random.Random(f"order-{seed}")
    by_item: dict[str, list[tuple[str, str]]] = {}
    for item, worker, label in dataset.answers:
        by_item.setdefault(item, []).append((worker, label))
    regular = [item for item in by_item if item not in gold]
    rng.shuffle(regular)
    stream: list[Event] = []
    for item in regular:
        answers = list(by_item[item])
        rng.shuffle(answers)
        stream.extend(("answer", item, worker, label) for worker, label in answers)
        stream.append(("end", item, "", ""))
    # Each worker's gold answers, placed among its regular answers.
    golds: dict[str, list[tuple[str, str]]] = {}
    for item in sorted(gold):
        for worker, label in by_item.get(item, []):
            golds.setdefault(worker, []).append((item, label))
    positions: dict[str, list[int]] = {}
    for index, (kind, _, worker, _) in enumerate(stream):
        if kind == "answer":
            positions.setdefault(worker, []).append(index)
    inserts: list[tuple[int, int, Event]] = []
    for worker in sorted(golds):
        answers = golds[worker]
        rng.shuffle(answers)
        own = positions.get(worker)
        for j, (item, label) in enumerate(answers):
            if own:
                at = own[min(len(own) - 1, (j * len(own)) // len(answers))]
            else:
                at = rng.randrange(len(stream) + 1)
            inserts.append((at, j, ("gold", item, worker, label)))
    inserts.sort(key=lambda x: (x[0], x[1]))
    merged: list[Event] = []
    k = 0
    for index, event in enumerate(stream):
        while k < len(inserts) and inserts[k][0] == index:
            merged.append(inserts[k][2])
            k += 1
        merged.append(event)
    merged.extend(event for _, _, event in inserts[k:])
    return merged


class Replay:
    """The customer's state and the replay's bookkeeping."""

    def __init__(self, dataset: Dataset, settings: ReplaySettings) -> None:
        self.dataset = dataset
        self.settings = settings
        self.categories = dataset.categories
        self.customer = quality.CustomerState()
        self.workers: dict[str, quality.WorkerState] = {}
        self.calibration = quality.IDENTITY
        self.blocked: set[str] = set()
        self.gold_answers: dict[str, list[tuple[str, str]]] = {}  # item -> (worker, label)
        self.regular_asked: dict[str, int] = {}
        # The open item
        self.counted: list[tuple[str, str]] = []
        self.asked = 0
        self.done = False

    def worker(self, worker: str) -> quality.WorkerState:
        state = self.workers.get(worker)
        if state is None:
            state = self.workers[worker] = quality.WorkerState()
        return state

    def apply(self, increments: quality.Increments) -> None:
        for worker in increments.workers:
            self.worker(worker)
        quality.apply(increments, self.customer, self.workers)

    def aggregate(self) -> quality.Aggregate:
        answers = [quality.CountedAnswer(label, self.workers[w]) for w, label in self.counted]
        return quality.aggregate(
            self.categories, answers, self.customer, self.calibration, self.settings.params
        )

    def complete(self, aggregate: quality.Aggregate) -> None:
        increments = quality.completion_increments(
            self.categories,
            aggregate.probabilities,
            dict(self.counted),
            self.settings.params,
        )
        self.apply(increments)

    def score_gold(
        self, item: str, worker: str, label: str, index: int, result: ReplayResult
    ) -> None:
        gold_category = self.dataset.truth[item]
        self.apply(quality.gold_answer_increments(worker, gold_category, label))
        answers = self.gold_answers.setdefault(item, [])
        answers.append((worker, label))
        observed = quality.gold_task_observation(
            self.categories,
            gold_category,
            [quality.CountedAnswer(lab, self.workers[w]) for w, lab in answers],
            self.customer,
            self.settings.params,
        )
        self.apply(quality.Increments(customer=observed))
        if self.customer.gold_answers % CALIBRATION_REFIT_EVERY == 0:
            self.calibration = quality.fit_calibration(self.customer.calibration_bins)
        state = self.workers[worker]
        if self.settings.block and quality.is_blocked(
            state.gold_answers, state.gold_correct, self.settings.blocking
        ):
            self.blocked.add(worker)
            result.blocks.append(
                Block(
                    worker,
                    index,
                    state.gold_answers,
                    state.gold_correct,
                    self.regular_asked.get(worker, 0),
                )
            )
            # Its answers on the open item stop counting.
            self.counted = [(w, lab) for w, lab in self.counted if w != worker]

    def run(self) -> ReplayResult:
        gold = split_gold(self.dataset, self.settings.gold_share, self.settings.seed)
        result = ReplayResult(items={}, gold_items=gold)
        rule = self.settings.rule
        answered_by: set[tuple[str, str]] = set()
        for index, (kind, item, worker, label) in enumerate(
            event_stream(self.dataset, gold, self.settings.seed)
        ):
            if kind == "gold":
                if worker not in self.blocked and (item, worker) not in answered_by:
                    answered_by.add((item, worker))
                    self.score_gold(item, worker, label, index, result)
                continue
            if kind == "end":
                if not self.done:
                    self._finish(item, result, ran_out=True)
                self.counted, self.asked, self.done = [], 0, False
                continue
            if self.done or worker in self.blocked or (item, worker) in answered_by:
                continue
            answered_by.add((item, worker))
            self.worker(worker)
            self.asked += 1
            self.regular_asked[worker] = self.regular_asked.get(worker, 0) + 1
            self.counted.append((worker, label))
            aggregate = self.aggregate()
            outcome = quality.decide(rule, [lab for _, lab in self.counted], aggregate)
            if outcome.complete:
                self.complete(aggregate)
                assert outcome.category is not None
                result.items[item] = ItemResult(
                    outcome.category,
                    aggregate.confidence,
                    self.asked,
                    len(self.counted),
                    ran_out=False,
                    raw_confidence=aggregate.raw_confidence,
                    dissent=len(self.counted) - aggregate.votes.get(aggregate.category, 0),
                )
                self.done = True
        result.calibration = self.calibration
        return result

    def _finish(self, item: str, result: ReplayResult, ran_out: bool) -> None:
        if not self.counted:
            result.items[item] = ItemResult(None, 0.0, self.asked, 0, ran_out)
            return
        aggregate = self.aggregate()
        self.complete(aggregate)
        category = aggregate.category if self.settings.rule.several_workers else self.counted[0][1]
        result.items[item] = ItemResult(
            category,
            aggregate.confidence,
            self.asked,
            len(self.counted),
            ran_out,
            raw_confidence=aggregate.raw_confidence,
            dissent=len(self.counted) - aggregate.votes.get(aggregate.category, 0),
        )


def replay(dataset: Dataset, settings: ReplaySettings) -> ReplayResult:
    return Replay(dataset, settings).run()


@dataclass(frozen=True)
class Scores:
    accuracy: float
    answers_per_item: float
    ece: float
    items: int


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> float:
    """ECE over equal-width bins of confidence: Σ_b (n_b / n) · |accuracy_b − confidence_b|."""
    totals = [[0, 0.0, 0.0] for _ in range(bins)]
    for c, ok in zip(confidences, correct, strict=True):
        b = totals[min(bins - 1, int(c * bins))]
        b[0] += 1
        b[1] += c
        b[2] += 1.0 if ok else 0.0
    n = len(confidences)
    return sum(abs(s_ok - s_c) / n for count, s_c, s_ok in totals if count)


def score(
    predictions: Mapping[str, tuple[str | None, float, int]],
    truth: dict[str, str],
    items: Sequence[str],
) -> Scores:
    """Accuracy, answers per item and ECE over `items` (each with a true label):
    predictions are item -> (category, confidence, answers used)."""
    correct = [predictions[i][0] == truth[i] for i in items]
    confidences = [predictions[i][1] for i in items]
    return Scores(
        accuracy=sum(correct) / len(items),
        answers_per_item=sum(predictions[i][2] for i in items) / len(items),
        ece=expected_calibration_error(confidences, correct),
        items=len(items),
    )


def evaluated_items(dataset: Dataset, gold: set[str]) -> list[str]:
    """The non-gold items with a true label."""
    return [item for item in dataset.items if item in dataset.truth and item not in gold]


def replay_scores(dataset: Dataset, result: ReplayResult) -> Scores:
    predictions = {item: (r.category, r.confidence, r.asked) for item, r in result.items.items()}
    return score(predictions, dataset.truth, evaluated_items(dataset, result.gold_items))
