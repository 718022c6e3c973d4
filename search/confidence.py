"""The answer model: the fitted parts of retrieval and answering, and the confidence of an answer.

``answer_model.json`` (fitted by ``bertsearch.search.training.calibrate``, ``fit_definitions`` and
``fit_names``) holds the hybrid fusion's weights, the confidence model's coefficients and the
default threshold.
Nothing is read at import: :func:`answer_model` reads the shipped fit on its first call (a
:class:`~bertsearch.search.searcher.Searcher` calls it when it opens and holds what it got), and
:func:`load_answer_model` reads any other file. The confidence of an answer is a logistic model
(:func:`probability`) of what the answer carries (:func:`confidence_features`); answers to a
question that asks for a term of a definition list have their own fit (:func:`definition_confidence`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bertsearch.indexer.common.errors import ConfigError

if TYPE_CHECKING:
    from bertsearch.search.definitions import DefinitionAnswer
    from bertsearch.search.types import Hit

__all__ = [
    "MODEL_FILE", "PAIR_MODEL_FILE", "AnswerModel", "answer_model", "answer_model_of", "confidence",
    "confidence_features", "default_threshold", "definition_confidence", "definition_features", "load_answer_model",
    "pair_answer_model_of", "probability", "reader_features",
]

MODEL_FILE = Path(__file__).resolve().parent / "answer_model.json"


@dataclass(frozen=True)
class AnswerModel:
    """The fitted parts of retrieval and answering (see ``answer_model.json``).

    Attributes:
        dense_weight: ``w`` of the hybrid fusion.
        depth: Chunks taken from each retriever before fusing.
        coefficients: Logistic-regression weights of the answer confidence, by feature name.
        intercept: Its intercept.
        threshold: The default minimum confidence of an answer.
        definitions: The confidence of answers to questions that ask for a term of a definition
            list (:mod:`bertsearch.search.definitions`, :func:`definition_confidence`):
            ``{"coefficients": {...}, "intercept": ..., "fitted": {...}}``; empty when not fitted
            (then no definition answers are given).
        name_weight: What the hybrid fusion adds to the score of a chunk whose document the
            question names (:func:`bertsearch.search.naming.named_documents`), in the standard
            deviations the dense and lexical scores are fused in; 0 (a fit made before it) adds
            nothing.
    """

    dense_weight: float
    depth: int
    coefficients: dict[str, float]
    intercept: float
    threshold: float
    fitted: dict[str, Any]
    definitions: dict[str, Any]
    name_weight: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerModel:
        return cls(float(data["dense_weight"]), int(data["depth"]), {k: float(v) for k, v in data["coefficients"].items()},
                   float(data["intercept"]), float(data["threshold"]), dict(data.get("fitted", {})),
                   dict(data.get("definitions", {})), float(data.get("name_weight", 0.0)))


def load_answer_model(path: str | Path = MODEL_FILE) -> AnswerModel:
    """The answer model in the JSON file ``path`` (read now, every call)."""
    return AnswerModel.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def answer_model() -> AnswerModel:
    """The shipped fit, :data:`MODEL_FILE` (read on the first call, then kept)."""
    return load_answer_model(MODEL_FILE)


def answer_model_of(qa_model: str | Path | None) -> AnswerModel:
    """The answer model fitted for the QA head in the folder ``qa_model``: its ``answer_model.json``
    when it has one (a head's confidence is fitted on that head's scores), else the shipped fit."""
    own = Path(qa_model) / MODEL_FILE.name if qa_model is not None else None
    if own is None or not own.is_file():
        return answer_model()
    try:
        return load_answer_model(own)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the answer model beside the QA model is unreadable ({type(exc).__name__}: {exc})") from exc


#: The confidence fit made for a large reader read beside the shipped head
#: (:mod:`bertsearch.search.reader_pair`), kept in the large reader's folder: a file of its own, so
#: that the large head read alone never takes it for its own fit.
PAIR_MODEL_FILE = "pair_answer_model.json"


def pair_answer_model_of(large_reader: str | Path) -> AnswerModel | None:
    """The fit made for the pair whose large head is in the folder ``large_reader`` (its
    :data:`PAIR_MODEL_FILE`); ``None`` when it has none."""
    own = Path(large_reader) / PAIR_MODEL_FILE
    if not own.is_file():
        return None
    try:
        return load_answer_model(own)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the large reader's answer model is unreadable ({type(exc).__name__}: {exc})") from exc


def default_threshold() -> float:
    """The default minimum confidence of an answer: the shipped fit's."""
    return answer_model().threshold


def probability(intercept: float, coefficients: dict[str, float], features: dict[str, float]) -> float:
    """A fitted logistic model's probability; a feature it does not name counts as 0."""
    z = float(intercept) + sum(float(w) * features.get(name, 0.0) for name, w in coefficients.items())
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def confidence_features(reader_score: float, null_score: float, weight: float, hit: Hit,
                        span_logit: float, named: tuple[float, float] = (0.0, 0.0)) -> dict[str, float]:
    """What the confidence model reads of an answer (``answer_model.json`` names the same keys).

    ``reader_score`` is normalised within one window of one passage; ``span_logit``, the span's
    raw start + end logit, is not, and tells the spans of different passages apart better.
    ``weight`` is the passage's weight (:func:`bertsearch.search.answers.passage_weights`).
    ``named`` is what :func:`bertsearch.search.naming.named_documents` says of the answer's passage
    (a fit made before these features has no coefficient for them: they count 0).
    """
    return {
        "names_document": named[0],
        "names_other": named[1],
        "log_reader": math.log(reader_score + 1e-6),
        "log_null": math.log(null_score + 1e-6),
        "span_logit": span_logit,
        "log_weight": math.log(weight + 1e-6),
        "dense_rank1": 1.0 if hit.ranks.get("dense") == 1 else 0.0,
        "lexical_rank1": 1.0 if hit.ranks.get("lexical") == 1 else 0.0,
        "both": 1.0 if len(hit.ranks) == 2 else 0.0,
    }


def confidence(features: dict[str, float], model: AnswerModel | None = None) -> float:
    """The fitted probability that a reader's answer with these features is right.

    Args:
        features: What :func:`confidence_features` gives.
        model: The answer model (default: the shipped fit, :func:`answer_model`).
    """
    fit = answer_model() if model is None else model
    return probability(fit.intercept, fit.coefficients, features)


def reader_features(features: dict[str, float], model: AnswerModel | None = None) -> dict[str, float]:
    """What :func:`definition_confidence` reads of a reader's answer: ``reader_logit``, the logit
    of its :func:`confidence` (``features`` are the answer's :func:`confidence_features`)."""
    p = min(max(confidence(features, model), 1e-6), 1.0 - 1e-6)
    return {"reader_logit": math.log(p / (1.0 - p))}


def definition_features(found: DefinitionAnswer, weights: list[float]) -> dict[str, float]:
    """What :func:`definition_confidence` reads of a definition-list answer (``weights``: the
    passages' weights, :func:`bertsearch.search.answers.passage_weights`)."""
    return {"definition": 1.0, "similarity": found.similarity, "margin": found.margin, "overlap": found.overlap,
            "log_weight": math.log(weights[found.passage_index] + 1e-6)}


def definition_confidence(features: dict[str, float], model: AnswerModel | None = None) -> float:
    """The fitted probability that an answer to a question asking for a term of a definition list
    is right: an entry's term (``definition``, ``similarity``, ``margin``, ``overlap``, and
    ``log_weight``, its passage's weight as in :func:`confidence_features`: see
    :func:`definition_features`) or a reader's span (``reader_logit``: see :func:`reader_features`).
    Fitted on technical documents (``bertsearch.search.training.fit_definitions``).

    Args:
        features: What :func:`definition_features` or :func:`reader_features` gives.
        model: The answer model (default: the shipped fit, :func:`answer_model`).
    """
    fit = (answer_model() if model is None else model).definitions
    return probability(fit["intercept"], fit["coefficients"], features)
