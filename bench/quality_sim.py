"""`make quality-sim` (`python -m bench.quality_sim`): the product's quality model on real
crowds, against majority vote and Dawid–Skene over all the answers.

    python -m bench.quality_sim --data DIR [--json]     one data set (answers.csv, gold.csv)
    python -m bench.quality_sim --synthetic [--json]    the synthetic crowd (blocking)
    python -m bench.quality_sim --suite DIR             every data set in DIR and the
                                                        synthetic crowd: the table with
                                                        PASS/FAIL, results JSON and plot

Each data set is replayed through the task-store's own quality code
(bench/quality_replay.py says how the replay mirrors the product): with the defaults
(`adaptive`: min_workers 1, max_workers 5, confidence 0.9) and a sweep of confidence and
max_workers, for several seeds (each seed draws other gold items and another order).
`adaptive_best` is the sweep's setting of highest mean accuracy within the answer budget:
70% of the answers per item that Dawid–Skene used, or all of them where the data set has
fewer than 5 answers per item. Scores are on the non-gold items with a true label:
accuracy, answers asked per item, and the expected calibration error of the reported
confidence over 10 bins. bench/quality.md explains how to read it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.quality_replay import (
    Dataset,
    ReplaySettings,
    Scores,
    evaluated_items,
    load_dataset,
    replay,
    replay_scores,
    score,
    split_gold,
)
from bench.quality_synthetic import synthetic_crowd, worker_kind
from humantask_taskstore import quality

DEFAULT_RULE = quality.CompletionRule(min_workers=1, max_workers=5, confidence=0.9)
SWEEP_CONFIDENCE = [0.8, 0.9, 0.95, 0.98, 0.99]
SWEEP_MAX_WORKERS = [3, 5, 7, 10]
BUDGET_SHARE = 0.7
# Below this many answers per item, adaptive_best may use all of them.
BUDGET_MIN_ANSWERS = 5.0
TARGET_DS_MARGIN = 0.01
TARGET_ECE = 0.05
SYNTHETIC = "synthetic"
RESULTS = Path(__file__).parent / "results" / "quality"


# Data sets are loaded once per process (the replays run in a pool).
_datasets: dict[tuple[str, int], Dataset] = {}


def dataset_of(source: str, seed: int) -> Dataset:
    """A data set folder, or the synthetic crowd (drawn anew for each seed)."""
    key = (source, seed if source == SYNTHETIC else 0)
    if key not in _datasets:
        _datasets[key] = (
            synthetic_crowd(seed) if source == SYNTHETIC else load_dataset(Path(source))
        )
    return _datasets[key]


@dataclass(frozen=True)
class Job:
    source: str
    seed: int
    confidence: float
    max_workers: int
    gold_share: float
    min_accuracy: float  # 0: nobody is blocked


def run_job(job: Job) -> dict[str, Any]:
    dataset = dataset_of(job.source, job.seed)
    settings = ReplaySettings(
        rule=quality.CompletionRule(1, job.max_workers, job.confidence),
        gold_share=job.gold_share,
        seed=job.seed,
        blocking=replace(quality.DEFAULT_BLOCKING, min_accuracy=job.min_accuracy),
        block=job.min_accuracy > 0,
    )
    result = replay(dataset, settings)
    scores = replay_scores(dataset, result)
    regular_answers = sum(1 for item, _, _ in dataset.answers if item not in result.gold_items)
    by_worker: dict[str, int] = {}
    for _, worker, _ in dataset.answers:
        by_worker[worker] = by_worker.get(worker, 0) + 1
    return {
        **asdict(job),
        **asdict(scores),
        "blocked": len(result.blocks),
        # The share of the data's answers given by workers the replay blocked.
        "blocked_answer_share": sum(by_worker[b.worker] for b in result.blocks)
        / max(1, len(dataset.answers)),
        "regular_answers": regular_answers,
        "blocks": [
            {
                "worker": b.worker,
                "gold_answers": b.gold_answers,
                "gold_correct": b.gold_correct,
                "regular_answers_before": b.regular_answers,
            }
            for b in result.blocks
        ],
        "calibration": asdict(result.calibration),
    }


def baselines(dataset: Dataset) -> dict[str, dict[str, tuple[str, float, int]]]:
    """Majority vote and crowd-kit's Dawid–Skene over all the answers:
    method -> item -> (category, confidence, answers)."""
    import pandas as pd
    from crowdkit.aggregation import DawidSkene, MajorityVote

    frame = pd.DataFrame(dataset.answers, columns=["task", "worker", "label"])
    counts = frame.groupby("task").size().to_dict()
    out: dict[str, dict[str, tuple[str, float, int]]] = {}
    for name, method in (("majority", MajorityVote()), ("dawid_skene", DawidSkene(n_iter=100))):
        labels = method.fit_predict(frame)
        probas = method.probas_
        out[name] = {
            item: (str(label), float(probas.loc[item].max()), int(counts[item]))
            for item, label in labels.items()
        }
    return out


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values)


def _summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    accuracies = [r["accuracy"] for r in rows]
    return {
        "accuracy": _mean(accuracies),
        "answers_per_item": _mean([r["answers_per_item"] for r in rows]),
        "ece": _mean([r["ece"] for r in rows]),
        "accuracy_min": min(accuracies),
        "accuracy_max": max(accuracies),
        "ece_max": max(r["ece"] for r in rows),
        "per_seed": {
            str(r["seed"]): {k: r[k] for k in ("accuracy", "answers_per_item", "ece")} for r in rows
        },
    }


def evaluate(
    source: str,
    seeds: Sequence[int],
    gold_share: float,
    min_accuracy: float,
    pool: ProcessPoolExecutor,
) -> dict[str, Any]:
    """Every method on one data set, over the seeds."""
    first = dataset_of(source, seeds[0])
    if len([item for item in first.items if item in first.truth]) < 2:
        raise SystemExit(f"{first.name}: fewer than 2 answered items have a true label (gold.csv)")
    grid = [(c, m) for c in SWEEP_CONFIDENCE for m in SWEEP_MAX_WORKERS]
    default = (DEFAULT_RULE.confidence, DEFAULT_RULE.max_workers)
    if default not in grid:
        grid.append(default)
    jobs = [Job(source, s, c, m, gold_share, min_accuracy) for s in seeds for c, m in grid]
    # The defaults without blocking: what blocking did.
    jobs += [Job(source, s, *default, gold_share, 0.0) for s in seeds] if min_accuracy else []
    futures = [pool.submit(run_job, job) for job in jobs]

    # Baselines: majority vote and Dawid–Skene, on each seed's non-gold items.
    base_rows: dict[str, list[dict[str, Any]]] = {"majority": [], "dawid_skene": []}
    for seed in seeds:
        dataset = dataset_of(source, seed)
        predictions = baselines(dataset)
        items = evaluated_items(dataset, split_gold(dataset, gold_share, seed))
        for name, pred in predictions.items():
            s: Scores = score(pred, dataset.truth, items)
            base_rows[name].append({"seed": seed, **asdict(s)})
    rows = [f.result() for f in futures]

    dataset = dataset_of(source, seeds[0])
    sweep: dict[tuple[float, int], list[dict[str, Any]]] = {}
    unblocked: list[dict[str, Any]] = []
    for row in rows:
        if row["min_accuracy"] == 0 and min_accuracy:
            unblocked.append(row)
        else:
            sweep.setdefault((row["confidence"], row["max_workers"]), []).append(row)
    methods: dict[str, Any] = {name: _summary(r) for name, r in base_rows.items()}
    ds_answers = methods["dawid_skene"]["answers_per_item"]
    capped = dataset.answers_per_item >= BUDGET_MIN_ANSWERS
    budget = BUDGET_SHARE * ds_answers if capped else ds_answers
    settings = {key: _summary(r) for key, r in sweep.items()}
    within = [key for key, s in settings.items() if s["answers_per_item"] <= budget + 1e-9]
    best_key = max(
        within, key=lambda k: (settings[k]["accuracy"], -settings[k]["answers_per_item"])
    )
    methods["adaptive"] = {
        **settings[default],
        "confidence": default[0],
        "max_workers": default[1],
    }
    methods["adaptive_best"] = {
        **settings[best_key],
        "confidence": best_key[0],
        "max_workers": best_key[1],
    }
    best, majority, ds = (
        methods[k]["accuracy"] for k in ("adaptive_best", "majority", "dawid_skene")
    )
    targets = {
        "adaptive_best >= majority": best >= majority - 1e-12,
        "adaptive_best >= dawid_skene - 0.01": best >= ds - TARGET_DS_MARGIN - 1e-12,
        "adaptive ece <= 0.05": methods["adaptive"]["ece"] <= TARGET_ECE,
    }
    default_rows = sweep[default]
    blocking: dict[str, Any] = {
        "min_accuracy": min_accuracy,
        "blocked_workers": _mean([r["blocked"] for r in default_rows]),
        "blocked_answer_share": _mean([r["blocked_answer_share"] for r in default_rows]),
    }
    if unblocked:
        blocking["adaptive_without_blocking"] = _summary(unblocked)
    if source == SYNTHETIC:
        blocking["blocks"] = synthetic_blocks(default_rows, seeds)
    return {
        "dataset": dataset.name,
        "items": len(dataset.items),
        "workers": len({w for _, w, _ in dataset.answers}),
        "answers": len(dataset.answers),
        "categories": len(dataset.categories),
        "answers_per_item": dataset.answers_per_item,
        "seeds": list(seeds),
        "gold_share": gold_share,
        "budget_answers_per_item": budget,
        "methods": methods,
        "targets": targets,
        "blocking": blocking,
        "sweep": [
            {
                "confidence": c,
                "max_workers": m,
                **{k: s[k] for k in ("accuracy", "answers_per_item", "ece")},
            }
            for (c, m), s in sorted(settings.items())
        ],
        "calibration": default_rows[0]["calibration"],
    }


def synthetic_blocks(rows: Sequence[dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """Who the blocking rule caught in the synthetic crowd, by kind, and after how many
    gold answers (medians over the seeds' blocks)."""
    from bench.quality_synthetic import KINDS

    by_kind: dict[str, list[dict[str, Any]]] = {kind.name: [] for kind in KINDS}
    for row in rows:
        for block in row["blocks"]:
            by_kind[worker_kind(block["worker"])].append(block)
    runs = len(seeds)
    return {
        kind.name: {
            "workers": kind.workers,
            "blocked_per_run": len(by_kind[kind.name]) / runs,
            "median_gold_answers_at_block": statistics.median(
                [b["gold_answers"] for b in by_kind[kind.name]]
            )
            if by_kind[kind.name]
            else None,
            "median_regular_answers_before_block": statistics.median(
                [b["regular_answers_before"] for b in by_kind[kind.name]]
            )
            if by_kind[kind.name]
            else None,
        }
        for kind in KINDS
    }


def table(results: Sequence[dict[str, Any]]) -> str:
    lines = [
        f"{'data set':10} {'method':14} {'accuracy':>9} {'(min–max)':>13} {'answers/item':>12} "
        f"{'ECE':>6}  setting",
    ]
    for r in results:
        for name in ("adaptive", "adaptive_best", "majority", "dawid_skene"):
            m = r["methods"][name]
            setting = (
                f"confidence {m['confidence']}, max_workers {m['max_workers']}"
                if "confidence" in m
                else ""
            )
            lines.append(
                f"{r['dataset']:10} {name:14} {m['accuracy']:9.3f} "
                f"{m['accuracy_min']:6.3f}–{m['accuracy_max']:.3f} {m['answers_per_item']:12.2f} "
                f"{m['ece']:6.3f}  {setting}"
            )
        b = r["blocking"]
        line = (
            f"{'':10} blocking: {b['blocked_workers']:.1f} workers blocked, "
            f"{b['blocked_answer_share']:.0%} of the data's answers are theirs"
        )
        if "adaptive_without_blocking" in b:
            nb = b["adaptive_without_blocking"]
            line += (
                f"; adaptive without blocking {nb['accuracy']:.3f} "
                f"({nb['answers_per_item']:.2f} answers/item, ECE {nb['ece']:.3f})"
            )
        lines.append(line)
        for target, ok in r["targets"].items():
            lines.append(f"{'':10} {'PASS' if ok else 'FAIL'}  {target}")
        if "blocks" in b:
            for kind, k in b["blocks"].items():
                lines.append(
                    f"{'':10} {kind}: {k['blocked_per_run']:.1f} of {k['workers']} blocked"
                    + (
                        f", after {k['median_gold_answers_at_block']} gold answers "
                        f"(median; {k['median_regular_answers_before_block']} regular answers)"
                        if k["median_gold_answers_at_block"] is not None
                        else ""
                    )
                )
    return "\n".join(lines)


def plot(results: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax, r in zip(axes.flat, results, strict=False):
        by_max: dict[int, list[dict[str, Any]]] = {}
        for s in r["sweep"]:
            by_max.setdefault(s["max_workers"], []).append(s)
        for m, points in sorted(by_max.items()):
            points.sort(key=lambda s: s["answers_per_item"])
            ax.plot(
                [s["answers_per_item"] for s in points],
                [s["accuracy"] for s in points],
                marker=".",
                linewidth=1,
                label=f"adaptive, max_workers {m}",
            )
        styles = {
            "adaptive": ("o", "black"),
            "adaptive_best": ("*", "red"),
            "majority": ("s", "grey"),
            "dawid_skene": ("D", "blue"),
        }
        for name, (marker, colour) in styles.items():
            m = r["methods"][name]
            ax.scatter(
                [m["answers_per_item"]],
                [m["accuracy"]],
                marker=marker,
                color=colour,
                s=60,
                zorder=5,
                label=name,
            )
        ax.axvline(r["budget_answers_per_item"], color="grey", linestyle=":", linewidth=1)
        ax.set_title(r["dataset"])
        ax.set_xlabel("answers per item")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def commit_name() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.quality_sim",
        description="Replays crowds through the product's quality model (bench/quality.md).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data", type=Path, help="one data set: a folder with answers.csv, gold.csv"
    )
    source.add_argument("--synthetic", action="store_true", help="the synthetic crowd")
    source.add_argument(
        "--suite", type=Path, help="every data set in this folder, and the synthetic crowd"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--gold-share", type=float, default=0.1, help="share of items made gold (0.1)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        action="append",
        dest="seeds",
        help="a seed (repeat for several; default 1, 2, 3)",
    )
    parser.add_argument(
        "--min-accuracy",
        type=float,
        default=quality.DEFAULT_BLOCKING.min_accuracy,
        help="WORKER_MIN_ACCURACY (0.7); 0 blocks nobody",
    )
    parser.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="replays run at once (2)"
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="where --suite writes its results"
    )
    args = parser.parse_args(argv)
    seeds = args.seeds or [1, 2, 3]
    # The code measured is the code at the start (files may change while it runs).
    commit = commit_name()

    if args.suite:
        folders = sorted(str(d) for d in args.suite.iterdir() if (d / "answers.csv").exists())
        sources = [*folders, SYNTHETIC]
    elif args.synthetic:
        sources = [SYNTHETIC]
    else:
        sources = [str(args.data)]

    results = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for src in sources:
            results.append(evaluate(src, seeds, args.gold_share, args.min_accuracy, pool))
            if not args.json:
                print(table(results[-1:]), flush=True)

    if args.suite:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = f"{datetime.now(UTC):%Y-%m-%d}-{commit}"
        document = {"commit": commit, "seeds": seeds, "datasets": results}
        (args.out / f"{stem}.json").write_text(json.dumps(document, indent=1) + "\n")
        plot(
            results,
            args.out / f"{stem}.png",
            f"Accuracy against answers per item ({commit})",
        )
        if not args.json:
            print(f"\nwrote {args.out / stem}.json and .png")
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else {"datasets": results}))
    elif len(results) > 1:
        print("\n" + table(results))
    failed = [r["dataset"] for r in results if not all(r["targets"].values())]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
