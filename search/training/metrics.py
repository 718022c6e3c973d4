"""The official SQuAD metrics: exact match and token F1 (pure Python).

Normalisation, EM and F1 follow the official evaluation scripts (v1.1 and v2.0): lower case,
punctuation removed, the articles *a*, *an*, *the* removed, white space folded. A question
scores the maximum over its gold answers. An unanswerable question (no gold answers) counts as
having the single gold answer ``""``, so only an empty prediction (an abstention) scores on it.
A question without a prediction counts as an empty prediction (as the v1.1 script scores it 0).
"""

from __future__ import annotations

import collections
import re
import string
import unicodedata
from typing import Hashable, Mapping, Sequence

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """Lower case, strip punctuation and articles, fold white space (the official normalisation)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> int:
    """1 when the normalised strings are equal, else 0."""
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    """Token-level F1 of the normalised strings (1/0 when either side is empty)."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _gold_list(answers: Sequence[str]) -> list[str]:
    gold = [a for a in answers if normalize_answer(a)]
    return gold or [""]


def squad_scores(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str]) -> dict[str, float]:
    """EM and F1 (percent) over all questions, and split into HasAns/NoAns.

    Args:
        gold: Question id -> gold answer texts (empty for an unanswerable question).
        predictions: Question id -> predicted text (``""`` abstains).

    Returns:
        ``exact``, ``f1``, ``total``; when the data has answerable questions ``HasAns_exact``,
        ``HasAns_f1``, ``HasAns_total``; when it has unanswerable ones ``NoAns_exact``,
        ``NoAns_f1``, ``NoAns_total``; and ``abstain_rate`` (percent of questions given an empty
        prediction) overall, plus ``NoAns_abstain_rate`` and ``HasAns_abstain_rate`` on v2 data.
    """
    exact: dict[str, float] = {}
    f1: dict[str, float] = {}
    abstained: dict[str, bool] = {}
    for qid, answers in gold.items():
        prediction = predictions.get(qid, "")
        golds = _gold_list(answers)
        exact[qid] = max(exact_match(prediction, g) for g in golds)
        f1[qid] = max(f1_score(prediction, g) for g in golds)
        abstained[qid] = not normalize_answer(prediction)
    has_ans = [q for q, a in gold.items() if _gold_list(a) != [""]]
    no_ans = [q for q, a in gold.items() if _gold_list(a) == [""]]

    def pct(values: Mapping[str, float], ids: Sequence[str]) -> float:
        return round(100.0 * sum(values[q] for q in ids) / len(ids), 4) if ids else 0.0

    ids = list(gold)
    scores: dict[str, float] = {"exact": pct(exact, ids), "f1": pct(f1, ids), "total": len(ids)}
    if has_ans:
        scores.update(HasAns_exact=pct(exact, has_ans), HasAns_f1=pct(f1, has_ans), HasAns_total=len(has_ans))
    if no_ans:
        scores.update(NoAns_exact=pct(exact, no_ans), NoAns_f1=pct(f1, no_ans), NoAns_total=len(no_ans))
    abstain = {q: float(v) for q, v in abstained.items()}
    scores["abstain_rate"] = pct(abstain, ids)
    if has_ans and no_ans:
        scores["NoAns_abstain_rate"] = pct(abstain, no_ans)
        scores["HasAns_abstain_rate"] = pct(abstain, has_ans)
    return scores


def ranking_scores(runs: Sequence[tuple[Hashable, Sequence[Hashable]]]) -> dict[str, float]:
    """How high each question's target ranks, over ``(target, ranked)`` pairs (``ranked``: a
    list of the targets of its retrieved chunks, best first, built before the call, never a lazy
    generator over a loop's variables; a target's repeats count once): MRR@10, the share
    with the target first (``top1``) and among the first 5 (``top5``)."""
    rr, top1, top5 = 0.0, 0, 0
    for target, ranked in runs:
        order = list(dict.fromkeys(ranked))
        if target in order[:10]:
            rr += 1.0 / (order.index(target) + 1)
        top1 += order[:1] == [target]
        top5 += target in order[:5]
    n = max(1, len(runs))
    return {"mrr@10": round(rr / n, 4), "top1": round(top1 / n, 4), "top5": round(top5 / n, 4)}


def answer_matches(answer: str, golds: Sequence[str]) -> bool:
    """Whether an answer to a technical-docs question is right: a gold answer inside it (and it at
    most 40 columns longer, so a whole paragraph does not count; a wide character, Chinese or
    Japanese, is two columns, as a terminal shows it), or F1 >= 0.5 with one."""
    a = loose(answer)
    for gold in golds:
        g = loose(gold)
        if g and g in a and columns(a) <= columns(g) + 40:
            return True
        if f1_score(answer, gold) >= 0.5:
            return True
    return False


def columns(text: str) -> int:
    """The width of ``text`` in a terminal's columns: East Asian wide and full-width characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def loose(text: str) -> str:
    """``text`` lower-cased, its white space collapsed, without punctuation at its ends."""
    return re.sub(r"\s+", " ", text.lower()).strip().strip(string.punctuation + " ")
