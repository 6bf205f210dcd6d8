"""From the raw posterior's confidence to a calibrated one, fitted on gold tasks.

The raw Dawid–Skene posterior treats workers' answers as independent given the true
category; on hard items they are not (several workers fall for the same trap), so the
raw posterior is over-confident (on the s_dog crowd, 0.14 of expected calibration error at
confidence 0.9), and more so where the answers disagree. Gold tasks know the truth: each
time a gold task has a new answer, the posterior of its answers so far (each worker's own
score on that task held out) is a sample of (raw confidence, right or wrong). Those
samples are kept as counters, in bins of (the raw log-odds ℓ = log(c / (1 − c)) of the
top category's probability c, the number of answers k, the number d of them not for the
top category), and a logistic map is fitted to them (Platt scaling, with the vote split
beside the raw log-odds):

    calibrated log-odds = a · ℓ + b + w_d · d + w_k · k

by maximum a posteriori, with a normal prior on (a, b, w_d, w_k) centred on the identity
(1, 0, 0, 0), so a customer with few gold answers keeps (nearly) the raw confidence. The
fit is a pure function of the bins (Newton's method over the few hundred bins a customer
fills, milliseconds): the task-store caches its result and refits every
`CALIBRATION_REFIT_EVERY` gold answers.

The calibrated posterior keeps the raw ranking: the top category's probability becomes the
calibrated confidence and the others share the rest in their raw proportions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from humantask_taskstore.quality.model import CalibrationBin, CustomerIncrement

# Bins of the raw log-odds: [LOW, LOW + WIDTH), ...; the first and last are open-ended.
BIN_LOW = -4.0
BIN_WIDTH = 0.5
BIN_COUNT = 40
# The raw log-odds is clamped here: beyond it, floats say nothing more.
LOGIT_LIMIT = 30.0

# The task-store refits the calibration (a pure function of the bins) every this many of
# the customer's gold answers, and caches the result.
CALIBRATION_REFIT_EVERY = 10

# The normal prior of the fit, centred on the identity (a = 1, b = 0). Each standard
# deviation is set on the scale of its term's largest effect on the log-odds, so no term
# can swing the confidence on a few dozen gold observations: the intercept 0.5; dissent
# 0.25 per dissenting answer; answers 0.1 per answer (1 logit at `max_workers` 10, where
# an sd of 0.5 per answer allowed 5). Looser, the first fits of a customer with little
# gold followed its first gold tasks' luck: on the labelme crowd one draw of gold reported
# 0.93 on items right 74% of the time until enough gold came in.
PRIOR_SLOPE_SD = 0.5
PRIOR_INTERCEPT_SD = 0.5
PRIOR_DISSENT_SD = 0.25
PRIOR_ANSWERS_SD = 0.1


@dataclass(frozen=True)
class Calibration:
    """calibrated log-odds = slope · raw log-odds + intercept
    + dissent_weight · dissenting answers + answers_weight · answers"""

    slope: float = 1.0
    intercept: float = 0.0
    dissent_weight: float = 0.0
    answers_weight: float = 0.0

    def log_odds(self, raw_log_odds: float, answers: int, dissent: int) -> float:
        return (
            self.slope * raw_log_odds
            + self.intercept
            + self.dissent_weight * dissent
            + self.answers_weight * answers
        )


IDENTITY = Calibration()
_PRIOR_MEAN = (IDENTITY.slope, IDENTITY.intercept, IDENTITY.dissent_weight, IDENTITY.answers_weight)
_PRIOR_SD = (PRIOR_SLOPE_SD, PRIOR_INTERCEPT_SD, PRIOR_DISSENT_SD, PRIOR_ANSWERS_SD)

# A bin: (raw log-odds bin, counted answers, dissenting answers).
BinKey = tuple[int, int, int]


def log_odds(probability: float) -> float:
    if probability <= 0.0:
        return -LOGIT_LIMIT
    if probability >= 1.0:
        return LOGIT_LIMIT
    value = math.log(probability) - math.log1p(-probability)
    return max(-LOGIT_LIMIT, min(LOGIT_LIMIT, value))


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def bin_index(logit: float) -> int:
    return max(0, min(BIN_COUNT - 1, math.floor((logit - BIN_LOW) / BIN_WIDTH)))


def observation(
    top_probability: float, answers: int, dissent: int, correct: bool
) -> CustomerIncrement:
    """The customer's increment for one gold-task posterior: its raw top probability, its
    counted answers and how many of them were not for its top category, and whether its
    top category was the gold one."""
    logit = log_odds(top_probability)
    key = (bin_index(logit), answers, dissent)
    return CustomerIncrement(calibration={key: (1.0, 1.0 if correct else 0.0, logit)})


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (4 unknowns)."""
    n = len(vector)
    a = [[*row, v] for row, v in zip(matrix, vector, strict=True)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, n):
            f = a[r][col] / a[col][col]
            for c in range(col, n + 1):
                a[r][c] -= f * a[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (a[r][n] - sum(a[r][c] * x[c] for c in range(r + 1, n))) / a[r][r]
    return x


def _log_posterior(data: list[tuple[list[float], float, float]], theta: list[float]) -> float:
    total = -0.5 * sum(
        ((t - m) / sd) ** 2 for t, m, sd in zip(theta, _PRIOR_MEAN, _PRIOR_SD, strict=True)
    )
    for x, n, c in data:
        z = sum(t * f for t, f in zip(theta, x, strict=True))
        # log σ(z) and log(1 − σ(z)), stable for large |z|
        log_p = -math.log1p(math.exp(-z)) if z > -30 else z
        log_q = -math.log1p(math.exp(z)) if z < 30 else -z
        total += c * log_p + (n - c) * log_q
    return total


def fit_calibration(bins: Mapping[BinKey, CalibrationBin]) -> Calibration:
    """The MAP logistic map from the bins (module doc): Newton's method with step halving
    (the log posterior is concave, so it converges). Pure; deterministic."""
    # Features (raw log-odds, 1, dissent, answers), each bin at its mean log-odds.
    data = [
        ([b.logit_sum / b.n, 1.0, float(dissent), float(answers)], b.n, b.correct)
        for (_, answers, dissent), b in sorted(bins.items())
        if b.n > 0
    ]
    if not data:
        return IDENTITY
    theta = list(_PRIOR_MEAN)
    inv_var = [1.0 / sd**2 for sd in _PRIOR_SD]
    current = _log_posterior(data, theta)
    for _ in range(100):
        grad = [-(t - m) * iv for t, m, iv in zip(theta, _PRIOR_MEAN, inv_var, strict=True)]
        hess = [[-inv_var[i] if i == j else 0.0 for j in range(4)] for i in range(4)]
        for x, n, c in data:
            p = sigmoid(sum(t * f for t, f in zip(theta, x, strict=True)))
            w = n * p * (1.0 - p)
            r = c - n * p
            for i in range(4):
                grad[i] += r * x[i]
                for j in range(4):
                    hess[i][j] -= w * x[i] * x[j]
        # The prior makes the Hessian negative definite: the Newton step is uphill.
        step_dir = _solve(hess, grad)
        step = 1.0
        while step > 1e-6:
            candidate_theta = [t - step * d for t, d in zip(theta, step_dir, strict=True)]
            candidate = _log_posterior(data, candidate_theta)
            if candidate >= current:
                break
            step /= 2
        else:
            break
        theta, current = candidate_theta, candidate
        if max(abs(step * d) for d in step_dir) < 1e-9:
            break
    return Calibration(*theta)


def calibrate(
    categories: Sequence[str],
    raw: Mapping[str, float],
    top: str,
    calibration: Calibration,
    answers: int,
    dissent: int,
) -> dict[str, float]:
    """The calibrated posterior: `top`'s probability mapped (module doc), the others
    sharing the rest in their raw proportions. `top` stays the most probable."""
    raw_top = raw[top]
    mapped = sigmoid(calibration.log_odds(log_odds(raw_top), answers, dissent))
    rest = 1.0 - raw_top
    others = max(1, len(categories) - 1)
    if rest <= 0.0:
        return {t: (mapped if t == top else (1.0 - mapped) / others) for t in categories}
    # The top must stay on top: at least the largest other's share of what is left.
    runner_up = max((raw[t] for t in categories if t != top), default=0.0)
    floor = runner_up / (rest + runner_up) if rest + runner_up > 0 else 0.0
    confidence = max(mapped, floor)
    scale = (1.0 - confidence) / rest
    return {t: (confidence if t == top else raw[t] * scale) for t in categories}
