"""Unanswerable questions made from answerable ones, in the style of SQuAD 2.0.

SQuAD 2.0's unanswerable questions were written against the paragraph to look answerable: most
of them swap an entity or a number for one the paragraph does not mention, replace a word by its
antonym, or negate the question (Rajpurkar et al. 2018, table 3). A head trained only with
off-topic negatives (another paragraph) learns to abstain when the topic is wrong, not when one
detail is. The functions here make such near-miss questions from SQuAD v1 training data, without
any SQuAD 2.0 data:

- *entity swap*: a name or number of the question that the paragraph mentions is replaced by one
  of the same kind (year, number, name) taken from elsewhere in the article, absent from the
  paragraph;
- *antonym*: a word with a clear opposite (first/last, largest/smallest...) is flipped, when the
  opposite does not appear in the paragraph;
- *negation*: the question's auxiliary verb is negated ("was" -> "was not", "did" -> "didn't");
- *word swap*: a content word that the question shares with the paragraph is replaced by another
  word of the article with the same ending that the paragraph lacks, so the question asks about a
  relation the paragraph does not state (a rough stand-in for SQuAD 2.0's "other neutral" questions).

Each is a heuristic and sometimes yields a question that still has an answer; that label noise is
the price of having no human-written unanswerable training data.
"""

from __future__ import annotations

import random
import re
from typing import Iterable, Sequence

from bertsearch.indexer.errors import ConfigError
from bertsearch.search.squad import SquadExample

KINDS = ("swap", "antonym", "word", "negate")

_PAIRS = (
    ("first", "last"), ("largest", "smallest"), ("biggest", "smallest"), ("most", "least"),
    ("highest", "lowest"), ("before", "after"), ("earliest", "latest"), ("increase", "decrease"),
    ("increased", "decreased"), ("more", "less"), ("north", "south"), ("east", "west"),
    ("northern", "southern"), ("eastern", "western"), ("oldest", "youngest"), ("older", "younger"),
    ("best", "worst"), ("maximum", "minimum"), ("longest", "shortest"), ("larger", "smaller"),
    ("higher", "lower"), ("strongest", "weakest"), ("above", "below"), ("inside", "outside"),
    ("public", "private"), ("ancient", "modern"), ("internal", "external"), ("won", "lost"),
    ("win", "lose"), ("start", "end"), ("started", "ended"), ("began", "ended"), ("major", "minor"),
    ("early", "late"), ("positive", "negative"), ("accept", "reject"), ("accepted", "rejected"),
    ("success", "failure"), ("successful", "unsuccessful"), ("rich", "poor"), ("wealthy", "poor"),
    ("legal", "illegal"), ("allowed", "banned"), ("support", "oppose"), ("supported", "opposed"),
    ("open", "close"), ("opened", "closed"), ("rise", "fall"), ("rose", "fell"), ("entered", "left"),
    ("gained", "lost"), ("common", "rare"), ("popular", "unpopular"), ("same", "different"),
)
ANTONYMS: dict[str, str] = {a: b for a, b in _PAIRS} | {b: a for a, b in _PAIRS if b not in dict(_PAIRS)}

_QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how in on at by for from of to the a an during after "
    "before according as is was are were did does do can could".split()
)
_YEAR = re.compile(r"^(1[0-9]{3}|20[0-9]{2})$")
_CANDIDATE = re.compile(r"\b(?:\d[\d,.]*\d|\d|[A-Z][\w'\-]*(?:\s+(?:of|the|de|von|van|del|la)?\s*[A-Z][\w'\-]*)*)")
_AUXILIARY = re.compile(r"\b(is|was|are|were|can|could|will|would|should|has|have|had|does|did|do)\b", re.IGNORECASE)
_SENTENCE_START = re.compile(r"[.!?:;\"(]\s*$")
_WORD = re.compile(r"\b[a-z]{5,}\b")
_STOPWORDS = frozenset(
    "about above after again against along among another around because before being below between "
    "called could during early either every first found given known large later least often other "
    "people place since small still their there these thing things those three through under until "
    "where which while whose would years named".split()
)
_CONTRACTED = {"do": "don't", "does": "doesn't", "did": "didn't"}


def _kind(span: str) -> str:
    if _YEAR.match(span):
        return "year"
    if span[0].isdigit():
        return "number"
    return "name"


def _spans(text: str) -> list[tuple[int, int, str]]:
    """Names and numbers of a text: ``(start, end, kind)``, question words excluded."""
    out = []
    for m in _CANDIDATE.finditer(text):
        span = m.group(0).rstrip(".,")
        if not span or span.lower() in _QUESTION_WORDS:
            continue
        out.append((m.start(), m.start() + len(span), _kind(span)))
    return out


def swap_entity(question: str, context: str, pool: dict[str, list[str]], rng: random.Random) -> str | None:
    """The question with one name or number that the context mentions replaced by one it does not.

    Args:
        question: The question.
        context: Its paragraph.
        pool: Replacement candidates by kind (``year``, ``number``, ``name``).
        rng: The random draw.

    Returns:
        The changed question, or ``None`` when nothing suitable can be swapped.
    """
    anchors = [(s, e, k) for s, e, k in _spans(question) if s > 0 and question[s:e] in context]
    return _replace_one(question, context, anchors, pool, rng)


def swap_word(question: str, context: str, pool: dict[str, list[str]], rng: random.Random) -> str | None:
    """The question with one content word it shares with the context replaced by a word of the
    pool with the same last three letters that the context lacks, or ``None``.

    Args:
        pool: Replacement candidates keyed by :func:`word_ending` (see :func:`words_by_ending`).
    """
    lowered = set(_WORD.findall(context.lower()))
    anchors = [(m.start(), m.end(), word_ending(m.group(0))) for m in _WORD.finditer(question)
               if m.group(0) in lowered and m.group(0) not in _STOPWORDS]
    return _replace_one(question, context, anchors, pool, rng)


def word_ending(word: str) -> str:
    """The key a word is pooled under: its last three letters ("-ing", "-ion", "-ers"), a rough
    match of the part of speech, so that a swapped question stays grammatical."""
    return "-" + word[-3:]


def words_by_ending(words: Iterable[str]) -> dict[str, list[str]]:
    """Content words grouped by :func:`word_ending`, in their order (stop words left out)."""
    pool: dict[str, list[str]] = {}
    for word in words:
        if word not in _STOPWORDS:
            pool.setdefault(word_ending(word), []).append(word)
    return pool


def _replace_one(question: str, context: str, anchors: list[tuple[int, int, str]], pool: dict[str, list[str]],
                 rng: random.Random) -> str | None:
    lowered = context.lower()
    rng.shuffle(anchors)
    for start, end, kind in anchors:
        original = question[start:end]
        candidates = pool.get(kind, [])
        for _ in range(8):
            if not candidates:
                break
            replacement = rng.choice(candidates)
            if replacement != original and replacement.lower() not in lowered and replacement not in question:
                return question[:start] + replacement + question[end:]
    return None


def flip_antonym(question: str, context: str, rng: random.Random) -> str | None:
    """The question with one word replaced by its antonym, or ``None`` (no such word, or the
    antonym occurs in the context, where the flipped question might still be answerable)."""
    words = [m for m in re.finditer(r"[A-Za-z]+", question) if m.group(0).lower() in ANTONYMS]
    rng.shuffle(words)
    lowered = context.lower()
    for m in words:
        opposite = ANTONYMS[m.group(0).lower()]
        if re.search(rf"\b{opposite}\b", lowered):
            continue
        if m.group(0)[0].isupper():
            opposite = opposite.capitalize()
        return question[: m.start()] + opposite + question[m.end():]
    return None


def negate(question: str) -> str | None:
    """The question with its first auxiliary verb negated, or ``None`` when it has none (or is
    negated already)."""
    if re.search(r"\bnot\b|n't\b|\bnever\b", question, re.IGNORECASE):
        return None
    m = _AUXILIARY.search(question)
    if m is None:
        return None
    word = m.group(0)
    negated = _CONTRACTED.get(word.lower())
    if negated is not None:
        negated = negated.capitalize() if word[0].isupper() else negated
        return question[: m.start()] + negated + question[m.end():]
    return question[: m.end()] + " not" + question[m.end():]


def _pools(examples: Sequence[SquadExample]) -> dict[str, dict[str, list[str]]]:
    """Per article title, the names and numbers of its paragraphs by kind, and its content words
    by :func:`word_ending`."""
    pools: dict[str, dict[str, list[str]]] = {}
    seen: set[tuple[str, str]] = set()
    for ex in examples:
        if (ex.title, ex.context) in seen:
            continue
        seen.add((ex.title, ex.context))
        pool = pools.setdefault(ex.title, {})
        for ending, words in words_by_ending(_WORD.findall(ex.context)).items():
            pool.setdefault(ending, []).extend(words)
        for s, e, kind in _spans(ex.context):
            # a capitalised word that opens a sentence is often not a name ("This", "All")
            if s > 0 and not (kind == "name" and _SENTENCE_START.search(ex.context, 0, s)):
                pool.setdefault(kind, []).append(ex.context[s:e])
    return pools


def parse_weights(text: str) -> tuple[float, ...]:
    """``"3,1,2,1"`` as the weights of :data:`KINDS` (entity swap, antonym, word swap, negation).

    Raises:
        ConfigError: Not four non-negative numbers with a positive sum.
    """
    try:
        weights = tuple(float(x) for x in text.split(","))
    except ValueError:
        weights = ()
    if len(weights) != len(KINDS) or min(weights) < 0 or sum(weights) <= 0:
        raise ConfigError(f"perturbation weights must be {len(KINDS)} non-negative numbers "
                          f"({', '.join(KINDS)}) with a positive sum, e.g. 3,1,2,1; got {text!r}")
    return weights


def add_perturbed_negatives(
    examples: Sequence[SquadExample], ratio: float, seed: int = 0, weights: Sequence[float] = (3, 1, 0, 1)
) -> list[SquadExample]:
    """Add unanswerable near-miss questions: an answerable question with an entity swapped, a
    word flipped to its antonym, a content word swapped, or its verb negated, paired with its own
    paragraph.

    The first kind tried is drawn with ``weights`` (entity swap, antonym, word swap, negation; the
    default is near SQuAD 2.0's shares); if an entity swap or an antonym does not apply, the other
    of the two is tried.

    Args:
        examples: The examples (answerable ones are perturbed).
        ratio: Perturbed negatives per answerable example (at most one each).
        seed: The seed of the draw (independent of the other negatives').
        weights: Relative frequency of the four kinds.

    Returns:
        The examples followed by the negatives (ids ``<id>-perturbed``).
    """
    rng = random.Random(seed + 104729)
    pools = _pools(examples)
    negatives: list[SquadExample] = []
    for ex in examples:
        if ex.is_impossible or not ex.answers or rng.random() >= ratio:
            continue
        first = rng.choices(KINDS, weights=weights)[0]
        # negation and word swaps apply to almost any question: only when drawn, so that they keep their share
        for kind in [first] if first in ("negate", "word") else [first, *(k for k in ("swap", "antonym") if k != first)]:
            pool = pools.get(ex.title, {})
            if kind == "swap":
                question = swap_entity(ex.question, ex.context, pool, rng)
            elif kind == "word":
                question = swap_word(ex.question, ex.context, pool, rng)
            elif kind == "antonym":
                question = flip_antonym(ex.question, ex.context, rng)
            else:
                question = negate(ex.question)
            if question is not None and question != ex.question:
                negatives.append(SquadExample(f"{ex.id}-perturbed", question, ex.context, (), True, ex.title))
                break
    return list(examples) + negatives
