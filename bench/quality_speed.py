"""`python -m bench.quality_speed`: how long the quality model's calls take in pure Python.

The worst case the contract allows for one task: 100 categories and 10 counted answers,
from workers with a history on this customer (soft counts over many categories), on a
customer whose pooled matrices have seen every category. Prints microseconds per call
(the best of several repeats of many calls each, in CPU time).
"""

from __future__ import annotations

import random
import time
import timeit

from humantask_taskstore import quality
from humantask_taskstore.quality.calibration import observation
from humantask_taskstore.quality.gold import gold_task_observation


def busy_customer(
    categories: list[str], workers: int, rng: random.Random
) -> tuple[quality.CustomerState, dict[str, quality.WorkerState]]:
    """A customer after a few thousand completed tasks and gold answers."""
    customer = quality.CustomerState()
    states = {f"w{i}": quality.WorkerState() for i in range(workers)}
    names = list(states)
    for _ in range(3000):
        true = rng.choice(categories)
        answered = {
            w: (true if rng.random() < 0.8 else rng.choice(categories))
            for w in rng.sample(names, 3)
        }
        posterior = {c: 0.0 for c in categories}
        posterior[true] = 0.9
        posterior[rng.choice(categories)] += 0.1
        quality.apply(
            quality.completion_increments(categories, posterior, answered), customer, states
        )
    for _ in range(1000):
        gold = rng.choice(categories)
        worker = rng.choice(names)
        answer = gold if rng.random() < 0.8 else rng.choice(categories)
        quality.apply(quality.gold_answer_increments(worker, gold, answer), customer, states)
        quality.apply(
            quality.Increments(
                customer=observation(rng.random(), rng.randint(1, 10), 0, rng.random() < 0.8)
            ),
            customer,
            states,
        )
    return customer, states


def per_call_us(statement: object, number: int) -> float:
    # CPU time, not wall time: on a shared machine, other processes' turns do not count.
    timer = timeit.Timer(statement, timer=time.process_time)  # type: ignore[arg-type]
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def measure(k: int, rng: random.Random) -> str:
    categories = [f"category-{i}" for i in range(k)]
    customer, states = busy_customer(categories, 50, rng)
    calibration = quality.fit_calibration(customer.calibration_bins)
    answers = [
        quality.CountedAnswer(rng.choice(categories), states[w])
        for w in rng.sample(list(states), 10)
    ]
    posterior_us = per_call_us(lambda: quality.posterior(categories, answers, customer), 200)
    aggregate_us = per_call_us(
        lambda: quality.aggregate(categories, answers, customer, calibration), 200
    )
    gold_us = per_call_us(
        lambda: gold_task_observation(categories, categories[0], answers, customer), 200
    )
    final = quality.aggregate(categories, answers, customer, calibration)
    answered = {f"w{i}": a.category for i, a in enumerate(answers)}
    learn_us = per_call_us(
        lambda: quality.completion_increments(categories, final.probabilities, answered), 200
    )
    fit_us = per_call_us(lambda: quality.fit_calibration(customer.calibration_bins), 5)
    return (
        f"{k:3} categories, 10 answers: posterior {posterior_us:5.0f} µs, aggregate "
        f"{aggregate_us:5.0f} µs, gold-task observation {gold_us:5.0f} µs, completion "
        f"increments {learn_us:4.0f} µs; calibration fit ({len(customer.calibration_bins)} "
        f"bins) {fit_us:5.0f} µs"
    )


def main() -> None:
    rng = random.Random(1)
    for k in (2, 10, 100):
        print(measure(k, rng), flush=True)


if __name__ == "__main__":
    main()
