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
  relation the paragraph does not state (a rough stand-in for SQuAD 2.0's "other neutral" questions);
- *role swap*: a name or number of the question is replaced by another of the same kind from the
  same paragraph, so every word is still there but the relation is not ("Who did Robert lead?" when
  the paragraph says Bohemond, Robert's son, led); the paragraph's words no longer give it away;
- *ordinal*: a superlative or "first" becomes "second ..." ("the busiest airport" -> "the second
  busiest airport") when the paragraph never says "second", close to SQuAD 2.0's impossible conditions;
- *reword*: the role swap for common words: a content word the question shares with the paragraph
  is replaced by another word of the same paragraph with the same ending ("Which treaty ended the
  occupation?" -> "Which treaty ended the invasion?"), so again every word is in the paragraph;
- *exchange*: two names, numbers or content words of the question that the paragraph mentions
  trade places ("What fraction of Asians are Hmong?" -> "What fraction of Hmong are Asians?"), so
  the words are all there but the relation is reversed (lists, "X and Y", are left alone).

Each is a heuristic and sometimes yields a question that still has an answer; that label noise is
the price of having no human-written unanswerable training data.
"""

from __future__ import annotations

import random
import re
from typing import Iterable, Sequence

from bertsearch.indexer.common.errors import ConfigError
from bertsearch.search.training.squad import SquadExample

DESCRIPTIONS = {
    "swap": "an entity or number swapped for one its paragraph lacks",
    "antonym": "a word flipped to its antonym",
    "word": "a content word swapped",
    "negate": "its verb negated",
    "role": "a name or number swapped for another one of its paragraph",
    "ordinal": "a superlative made 'second ...'",
    "reword": "a content word swapped for another one of its paragraph",
    "exchange": "two of its names, numbers or words exchanged",
}
KINDS = tuple(DESCRIPTIONS)  # the order of --perturbed-weights

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
    ("include", "exclude"), ("included", "excluded"), ("includes", "excludes"), ("pro", "anti"),
    ("worse", "better"), ("cheaper", "dearer"), ("slower", "faster"), ("weaker", "stronger"),
    ("import", "export"), ("imported", "exported"), ("imports", "exports"), ("domestic", "foreign"),
    ("minimum", "maximum"), ("inner", "outer"), ("upper", "lower"), ("forward", "backward"),
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
# Not a stopword list (that is ``bertsearch.indexer.terms.STOPWORDS``): long words too common in
# any paragraph to make a near-miss question when swapped for another paragraph's word.
_COMMON_WORDS = frozenset(
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


def _mentioned_spans(question: str, context: str) -> list[tuple[int, int, str]]:
    """The question's names and numbers that the context mentions (its first word excluded)."""
    return [(s, e, k) for s, e, k in _spans(question) if s > 0 and question[s:e] in context]


def _names(text: str) -> Iterable[tuple[str, str]]:
    """``(kind, span)`` of a paragraph's names and numbers, without capitalised words that open a
    sentence (often not a name: "This", "All")."""
    for s, e, kind in _spans(text):
        if s > 0 and not (kind == "name" and _SENTENCE_START.search(text, 0, s)):
            yield kind, text[s:e]


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
    return _replace_one(question, context, _mentioned_spans(question, context), pool, rng)


def swap_word(question: str, context: str, pool: dict[str, list[str]], rng: random.Random) -> str | None:
    """The question with one content word it shares with the context replaced by a word of the
    pool with the same last three letters that the context lacks, or ``None``.

    Args:
        pool: Replacement candidates keyed by :func:`word_ending` (see :func:`words_by_ending`).
    """
    return _replace_one(question, context, _shared_words(question, set(_WORD.findall(context.lower()))), pool, rng)


def _shared_words(question: str, words: set[str]) -> list[tuple[int, int, str]]:
    """``(start, end, ending)`` of the question's content words that are in ``words``."""
    return [(m.start(), m.end(), word_ending(m.group(0))) for m in _WORD.finditer(question)
            if m.group(0) in words and m.group(0) not in _COMMON_WORDS]


def word_ending(word: str) -> str:
    """The key a word is pooled under: its last three letters ("-ing", "-ion", "-ers"), a rough
    match of the part of speech, so that a swapped question stays grammatical."""
    return "-" + word[-3:]


def words_by_ending(words: Iterable[str]) -> dict[str, list[str]]:
    """Content words grouped by :func:`word_ending`, in their order (stop words left out)."""
    pool: dict[str, list[str]] = {}
    for word in words:
        if word not in _COMMON_WORDS:
            pool.setdefault(word_ending(word), []).append(word)
    return pool


def reword(question: str, context: str, answers: Sequence[str], rng: random.Random) -> str | None:
    """The question with one content word it shares with the context replaced by another word of the
    context with the same :func:`word_ending`, or ``None``.

    The replacement is a lower-case content word (names are :func:`swap_role`'s), not already in the
    question and not part of a gold answer.

    Args:
        question: The question.
        context: Its paragraph.
        answers: The gold answer texts.
        rng: The random draw.
    """
    words = _WORD.findall(context)
    answer_text = " ".join(answers).lower()
    pool = words_by_ending(w for w in dict.fromkeys(words) if w not in answer_text)
    anchors = _shared_words(question, set(words))
    rng.shuffle(anchors)
    for start, end, ending in anchors:
        candidates = [w for w in pool.get(ending, []) if w not in question]
        if candidates:
            return question[:start] + rng.choice(candidates) + question[end:]
    return None


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


_SUPERLATIVE = re.compile(r"\b(first|most|least|[a-z]{3,}est)\b", re.IGNORECASE)
_NOT_SUPERLATIVE = frozenset(
    "interest forest request suggest honest modest protest harvest contest arrest invest manifest "
    "conquest earnest priest digest behest southwest northwest midwest".split()
)


def ordinal(question: str, context: str) -> str | None:
    """The question asking for the second instead of the first or the superlative ("the largest"
    -> "the second largest"), or ``None`` (no superlative, or the paragraph says "second")."""
    if re.search(r"\bsecond\b", context, re.IGNORECASE) or re.search(r"\bsecond\b", question, re.IGNORECASE):
        return None
    m = next((m for m in _SUPERLATIVE.finditer(question) if m.group(0).lower() not in _NOT_SUPERLATIVE), None)
    if m is None or m.start() == 0:
        return None
    if m.group(0).lower() == "first":
        return question[: m.start()] + "second" + question[m.end():]
    return question[: m.start()] + "second " + question[m.start():]


def swap_role(question: str, context: str, answers: Sequence[str], rng: random.Random) -> str | None:
    """The question with one name or number that the context mentions replaced by another of the
    same kind from the context (not an answer, not a variant of the original), or ``None``.

    Args:
        question: The question.
        context: Its paragraph.
        answers: The gold answer texts, never used as replacements.
        rng: The random draw.
    """
    by_kind: dict[str, list[str]] = {}
    for kind, name in _names(context):
        by_kind.setdefault(kind, []).append(name)
    anchors = _mentioned_spans(question, context)
    rng.shuffle(anchors)
    for start, end, kind in anchors:
        original = question[start:end].lower()
        candidates = [c for c in by_kind.get(kind, [])
                      if len(c) > 2 and original not in c.lower() and c.lower() not in original and c not in question
                      and not any(c.lower() in a.lower() or a.lower() in c.lower() for a in answers)]
        if candidates:
            return question[:start] + rng.choice(candidates) + question[end:]
    return None


_LIST_GAP = re.compile(r"[\s,;&]*(?:(?:and|or|nor|the|a|an)\b[\s,;&]*)*", re.IGNORECASE)


def exchange(question: str, context: str, rng: random.Random) -> str | None:
    """The question with two of its names or numbers (or else two content words with the same
    :func:`word_ending`) that the context mentions exchanged, or ``None``.

    Two items separated only by commas, "and", "or" or an article are a list, whose order rarely
    matters, so they are never exchanged; nor are two spellings of one item.

    Args:
        question: The question.
        context: Its paragraph.
        rng: The random draw.
    """
    groups = (
        [a for a in _mentioned_spans(question, context) if a[1] - a[0] >= 3],
        _shared_words(question, set(_WORD.findall(context))),
    )
    for anchors in groups:
        pairs = [(a, b) for i, a in enumerate(anchors) for b in anchors[i + 1:]
                 if a[2] == b[2] and a[1] < b[0] and not _LIST_GAP.fullmatch(question, a[1], b[0])
                 and question[a[0]:a[1]].lower() != question[b[0]:b[1]].lower()]
        if pairs:
            (s1, e1, _), (s2, e2, _) = rng.choice(pairs)
            return question[:s1] + question[s2:e2] + question[e1:s2] + question[s1:e1] + question[e2:]
    return None


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
        for kind, name in _names(ex.context):
            pool.setdefault(kind, []).append(name)
    return pools


def parse_weights(text: str) -> tuple[float, ...]:
    """``"3,1,2,1,2,1,2,2"`` as the weights of :data:`KINDS` (entity swap, antonym, word swap, negation,
    role swap, ordinal, reword, exchange). Kinds left off the end get weight 0, so ``"3,1,2,1"`` (the kinds of
    earlier releases) still means what it meant.

    Raises:
        ConfigError: Not 1 to ``len(KINDS)`` non-negative numbers with a positive sum.
    """
    try:
        weights = tuple(float(x) for x in text.split(","))
    except ValueError:
        weights = ()
    if not 0 < len(weights) <= len(KINDS) or min(weights) < 0 or sum(weights) <= 0:
        raise ConfigError(f"perturbation weights must be up to {len(KINDS)} non-negative numbers "
                          f"({', '.join(KINDS)}) with a positive sum, e.g. 3,1,2,1,2,1; got {text!r}")
    return weights + (0.0,) * (len(KINDS) - len(weights))


_FALLBACKS = {"swap": ("antonym",), "antonym": ("swap",), "ordinal": ("antonym", "swap"), "reword": ("role", "word"),
              "exchange": ("reword", "role", "word")}


def add_perturbed_negatives(
    examples: Sequence[SquadExample], ratio: float, seed: int = 0, weights: Sequence[float] = (3, 1, 0, 1)
) -> list[SquadExample]:
    """Add unanswerable near-miss questions: an answerable question changed by one of
    :data:`KINDS`, paired with its own paragraph.

    The kind tried first is drawn with ``weights`` (in the order of :data:`KINDS`, missing ones 0;
    the default is near SQuAD 2.0's shares). If an entity swap or an antonym does not apply, the
    other of the two is tried; if an ordinal does not, an antonym and then an entity swap are; if a
    reword does not, a role swap and then a word swap are; if an exchange does not, a reword, a role
    swap and a word swap are. The other kinds apply to most questions and are only used when drawn,
    so that they keep their share.

    Args:
        examples: The examples (answerable ones are perturbed).
        ratio: Perturbed negatives per answerable example (at most one each).
        seed: The seed of the draw (independent of the other negatives').
        weights: Relative frequency of the kinds.

    Returns:
        The examples followed by the negatives (ids ``<id>-perturbed``).
    """
    rng = random.Random(seed + 104729)
    weights = tuple(weights) + (0.0,) * (len(KINDS) - len(weights))
    pools = _pools(examples)
    negatives: list[SquadExample] = []
    for ex in examples:
        if ex.is_impossible or not ex.answers or rng.random() >= ratio:
            continue
        first = rng.choices(KINDS, weights=weights)[0]
        for kind in (first, *_FALLBACKS.get(first, ())):
            pool = pools.get(ex.title, {})
            if kind == "swap":
                question = swap_entity(ex.question, ex.context, pool, rng)
            elif kind == "word":
                question = swap_word(ex.question, ex.context, pool, rng)
            elif kind == "antonym":
                question = flip_antonym(ex.question, ex.context, rng)
            elif kind == "role":
                question = swap_role(ex.question, ex.context, [a.text for a in ex.answers], rng)
            elif kind == "ordinal":
                question = ordinal(ex.question, ex.context)
            elif kind == "reword":
                question = reword(ex.question, ex.context, [a.text for a in ex.answers], rng)
            elif kind == "exchange":
                question = exchange(ex.question, ex.context, rng)
            else:
                question = negate(ex.question)
            if question is not None and question != ex.question:
                negatives.append(SquadExample(f"{ex.id}-perturbed", question, ex.context, (), True, ex.title))
                break
    return list(examples) + negatives
