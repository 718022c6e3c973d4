"""Evaluate a QA model on a SQuAD-format file (``bertsearch eval-qa``).

Each question is read against its own paragraph. The prediction is the best span; on data with
unanswerable questions (v2) the model abstains (predicts ``""``) when its no-answer score beats
the best span's by more than ``null_threshold`` (log-probability difference, as in the BERT
SQuAD 2.0 recipe). Scores come from :func:`bertsearch.search.training.metrics.squad_scores`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bertsearch.indexer.common.progress import progress_bar
from bertsearch.search.training.metrics import squad_scores
from bertsearch.search.training.squad import load_squad


SWEEP = (-6.0, -4.0, -3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0)


def best_spans(
    reader: Any, examples: list[Any], chunk: int = 256, show_progress: bool = False
) -> dict[str, tuple[str, float]]:
    """Question id -> (best span text, ``log P(null) - log P(best span)``), each read against its own context.

    ``show_progress`` shows a tqdm bar of the questions read.
    """
    return {ex.id: best_span(ex.context, res) for ex, res in read_examples(reader, examples, chunk, show_progress)}


def best_span(context: str, result: Any) -> tuple[str, float]:
    """One read result's best span text and ``log P(null) - log P(best span)`` (``""`` and infinity
    when it has no span)."""
    if not result.spans:
        return "", float("inf")
    best = result.spans[0]
    return context[best.start : best.end], result.null_score - best.score


def read_examples(
    reader: Any, examples: list[Any], chunk: int = 256, show_progress: bool = False
) -> Iterator[tuple[Any, Any]]:
    """Each example with the reader's result for it (its n-best spans and no-answer score), read
    against its own context ``chunk`` questions at a time: the reading of ``eval-qa``."""
    with progress_bar(show_progress, "reading", " questions", total=len(examples)) as bar:
        for lo in range(0, len(examples), chunk):
            part = examples[lo : lo + chunk]
            yield from zip(part, reader.read_pairs([e.question for e in part], [e.context for e in part]))
            bar.update(len(part))


def predictions_at(spans: dict[str, tuple[str, float]], abstain: bool, null_threshold: float) -> dict[str, str]:
    """Predictions: the best span, or ``""`` when abstaining and the null score wins by > threshold."""
    return {q: ("" if not text or (abstain and diff > null_threshold) else text) for q, (text, diff) in spans.items()}


def score_predictions(data_path: str | Path, predictions_path: str | Path) -> dict[str, Any]:
    """Score a predictions file (``{id: text}`` JSON, the official scripts' input) against SQuAD data.

    Raises:
        ConfigError: A file is missing or unreadable.
    """
    from bertsearch.indexer.common.errors import ConfigError

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
    sweep: bool = False,
    record: bool = False,
    show_progress: bool = False,
    cache_dir: str | Path | None = None,
    large_reader: str | Path | None = None,
) -> dict[str, Any]:
    """Official EM/F1 of a QA model on a SQuAD file.

    Args:
        model_path: QA model folder; ``None`` for the shipped head.
        data_path: SQuAD-format file (``.json`` or ``.json.gz``).
        limit: Only the first ``limit`` questions.
        null_threshold: Abstain when ``log P(null) - log P(best span)`` exceeds it.
        abstain: Allow abstaining; default: only when the data holds unanswerable questions.
        batch_size: Windows per forward pass.
        precision: ``auto``, ``bf16``, ``fp32`` or ``int8``.
        predictions_path: Also write ``{id: prediction}`` here (the official scripts' input).
        reader: An already loaded :class:`~bertsearch.search.reader.Reader` (overrides the model).
        sweep: Also score a range of null thresholds (``threshold_sweep``; no extra model runs).
        record: Store the scores in the model folder (``bertsearch_qa.json``, ``MODEL_CARD.md``).
        show_progress: Show a progress bar of the questions read.
        cache_dir: Where the named encoder of a head trained on one is kept (``Settings.cache_dir``).
        large_reader: A second QA model folder read with the first as one
            (:class:`~bertsearch.search.reader_pair.ReaderPair`: both read every question's context;
            not with ``reader``).

    Returns:
        The scores of :func:`squad_scores` plus ``seconds`` and ``null_threshold``.
    """
    from bertsearch.search.reader import Reader

    if reader is not None and large_reader is not None:
        raise ValueError("a reader handed in is read as it is: pass a ReaderPair instead of large_reader")
    if record:
        if large_reader is not None:
            from bertsearch.indexer.common.errors import ConfigError

            raise ConfigError("scores of two heads read as one are not recorded in either's folder: drop --record")
        _check_recordable(model_path)
    examples = load_squad(data_path, limit=limit)
    if abstain is None:
        abstain = any(e.is_impossible for e in examples)
    if reader is None:
        reader = Reader(model_path, precision=precision, batch_size=batch_size, cache_dir=cache_dir)
        if large_reader is not None:
            from bertsearch.search.reader_pair import ReaderPair

            reader = ReaderPair(reader, Reader(large_reader, precision=precision, batch_size=batch_size,
                                               cache_dir=cache_dir))
    t0 = time.time()
    spans = best_spans(reader, examples, show_progress=show_progress)
    gold = {e.id: [a.text for a in e.answers] for e in examples}
    predictions = predictions_at(spans, abstain, null_threshold)
    scores: dict[str, Any] = squad_scores(gold, predictions)
    scores["seconds"] = round(time.time() - t0, 1)
    if large_reader is not None:
        scores["large_reader"] = str(large_reader)
    if abstain:
        scores["null_threshold"] = null_threshold
    if sweep:
        keys = ("f1", "HasAns_f1", "NoAns_abstain_rate", "abstain_rate")
        scores["threshold_sweep"] = [
            {"null_threshold": t, **{k: v for k, v in squad_scores(gold, predictions_at(spans, True, t)).items() if k in keys}}
            for t in SWEEP
        ]
    if record:
        from bertsearch.search.training.export import record_evaluation

        name = Path(data_path).name + (f" (first {limit})" if limit else "")
        record_evaluation(model_path, name, scores)
    if predictions_path is not None:
        Path(predictions_path).write_text(json.dumps(predictions, ensure_ascii=False), encoding="utf-8")
    return scores


def _check_recordable(model_path: str | Path | None) -> None:
    """``--record`` writes into a model folder of the user's, never into the installed package."""
    from bertsearch.indexer.common.errors import ConfigError
    from bertsearch.search.qa_head import default_qa_model_path, multilingual_qa_model_path

    shipped = {default_qa_model_path().resolve(), multilingual_qa_model_path().resolve()}
    if model_path is None or Path(model_path).resolve() in shipped:
        raise ConfigError("--record writes into the model folder, and the shipped head is part of the installed "
                          "package; copy it to a folder of your own and pass that with --model")
