"""Whether a confidence means what it says: expected calibration error and accuracy against coverage.

Both read pairs of (confidence of an answer, whether it was right), one per question (its top
answer; a question without an answer counts as confidence 0, wrong).

- :func:`calibration_error`: the questions in equal-width confidence bins; the mean, weighted by
  the bins' sizes, of each bin's gap between its mean confidence and its share of right answers
  (ECE, Guo et al. 2017), with the bins themselves for a reliability diagram.
- :func:`coverage_curve`: the questions answered (coverage) and the share of them right
  (accuracy) as the threshold moves from the highest confidence down to none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def calibration_error(pairs: Sequence[tuple[float, bool]], bins: int = 10) -> dict[str, Any]:
    """ECE of ``pairs`` over ``bins`` equal-width bins of [0, 1], and the bins (empty ones left out)."""
    if not pairs:
        raise ValueError("no answers to measure")
    if bins < 1:
        raise ValueError("bins must be at least 1")
    filled: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for conf, right in pairs:
        if not 0.0 <= conf <= 1.0:
            raise ValueError(f"a confidence out of [0, 1]: {conf}")
        filled[min(int(conf * bins), bins - 1)].append((conf, right))
    table, gap = [], 0.0
    for i, members in enumerate(filled):
        if not members:
            continue
        mean_conf = sum(c for c, _ in members) / len(members)
        accuracy = sum(r for _, r in members) / len(members)
        gap += len(members) * abs(mean_conf - accuracy)
        table.append({"low": i / bins, "high": (i + 1) / bins, "n": len(members),
                      "confidence": round(mean_conf, 4), "accuracy": round(accuracy, 4)})
    return {"ece": round(gap / len(pairs), 4), "n": len(pairs), "bins": table}


def coverage_curve(pairs: Sequence[tuple[float, bool]], points: int = 20) -> list[dict[str, float]]:
    """Accuracy against coverage: for coverage ``k/points`` (k = 1..points), the answers of the
    most confident ``k/points`` of the questions, the share of them right, and the threshold
    (the lowest confidence kept) that answers them."""
    if not pairs:
        raise ValueError("no answers to measure")
    ranked = sorted(pairs, key=lambda p: p[0], reverse=True)
    curve = []
    for k in range(1, points + 1):
        n = max(1, round(len(ranked) * k / points))
        kept = ranked[:n]
        curve.append({"coverage": round(n / len(ranked), 4), "accuracy": round(sum(r for _, r in kept) / n, 4),
                      "threshold": round(kept[-1][0], 4)})
    return curve


def at_threshold(pairs: Sequence[tuple[float, bool]], threshold: float) -> dict[str, float]:
    """Coverage and accuracy of the answers at or above ``threshold``, and the share of all the
    right answers they keep."""
    kept = [r for c, r in pairs if c >= threshold]
    right = sum(r for _, r in pairs)
    return {"threshold": threshold, "coverage": round(len(kept) / len(pairs), 4) if pairs else 0.0,
            "accuracy": round(sum(kept) / len(kept), 4) if kept else 0.0,
            "right_kept": round(sum(kept) / right, 4) if right else 0.0}
