"""Evaluate a QA model on a SQuAD-format file (``bertsearch eval-qa``).

Each question is read against its own paragraph. The prediction is the best span; on data with
unanswerable questions (v2) the model abstains (predicts ``""``) when its no-answer score beats
the best span's by more than ``null_threshold`` (log-probability difference, as in the BERT
SQuAD 2.0 recipe). Scores come from :func:`bertsearch.search.qa_metrics.squad_scores`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bertsearch.search.qa_metrics import squad_scores
from bertsearch.search.squad import load_squad


def predict(
    reader: Any, examples: list[Any], abstain: bool, null_threshold: float = 0.0, chunk: int = 256
) -> dict[str, str]:
    """Question id -> predicted text for SQuAD examples (each read against its own context)."""
    predictions: dict[str, str] = {}
    for lo in range(0, len(examples), chunk):
        part = examples[lo : lo + chunk]
        results = reader.read_pairs([e.question for e in part], [e.context for e in part])
        for ex, res in zip(part, results):
            best = res.spans[0] if res.spans else None
            if best is None or (abstain and res.null_score - best.score > null_threshold):
                predictions[ex.id] = ""
            else:
                predictions[ex.id] = ex.context[best.start : best.end]
    return predictions


def score_predictions(data_path: str | Path, predictions_path: str | Path) -> dict[str, Any]:
    """Score a predictions file (``{id: text}`` JSON, the official scripts' input) against SQuAD data.

    Raises:
        ConfigError: A file is missing or unreadable.
    """
    from bertsearch.indexer.errors import ConfigError

    examples = load_squad(data_path)
    try:
        predictions = json.loads(Path(predictions_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read predictions {predictions_path}: {exc}") from exc
    if not isinstance(predictions, dict):
        raise ConfigError(f"{predictions_path} must hold a JSON object {{id: answer}}")
    return squad_scores({e.id: [a.text for a in e.answers] for e in examples}, predictions)


def evaluate_qa_model(
    model_path: str | Path | None,
    data_path: str | Path,
    limit: int | None = None,
    null_threshold: float = 0.0,
    abstain: bool | None = None,
    batch_size: int = 32,
    precision: str = "auto",
    predictions_path: str | Path | None = None,
    reader: Any = None,
) -> dict[str, Any]:
    """Official EM/F1 of a QA model on a SQuAD file.

    Args:
        model_path: QA model folder; ``None`` for the shipped head.
        data_path: SQuAD-format file (``.json`` or ``.json.gz``).
        limit: Only the first ``limit`` questions.
        null_threshold: Abstain when ``log P(null) - log P(best span)`` exceeds it.
        abstain: Allow abstaining; default: only when the data holds unanswerable questions.
        batch_size: Windows per forward pass.
        precision: ``auto``, ``bf16`` or ``fp32``.
        predictions_path: Also write ``{id: prediction}`` here (the official scripts' input).
        reader: An already loaded :class:`~bertsearch.search.reader.Reader` (overrides the model).

    Returns:
        The scores of :func:`squad_scores` plus ``seconds`` and ``null_threshold``.
    """
    from bertsearch.search.reader import Reader

    examples = load_squad(data_path, limit=limit)
    if abstain is None:
        abstain = any(e.is_impossible for e in examples)
    if reader is None:
        reader = Reader(model_path, precision=precision, batch_size=batch_size)
    t0 = time.time()
    predictions = predict(reader, examples, abstain, null_threshold)
    scores: dict[str, Any] = squad_scores({e.id: [a.text for a in e.answers] for e in examples}, predictions)
    scores["seconds"] = round(time.time() - t0, 1)
    if abstain:
        scores["null_threshold"] = null_threshold
    if predictions_path is not None:
        Path(predictions_path).write_text(json.dumps(predictions, ensure_ascii=False), encoding="utf-8")
    return scores
