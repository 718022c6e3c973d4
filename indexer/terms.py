"""Words for the lexical index, cut for technical text.

A plain word tokenizer splits ``sshd_config`` at the underscore and ``--rebuild`` loses its
dashes, so the question's exact words stop matching. :func:`lexical_terms` keeps every
compound whole (identifiers, paths, options, versions, ``host:port``) and adds its parts, so a
query for ``sshd_config``, ``sshd`` or ``config`` finds the same passage:

>>> lexical_terms("Set PermitRootLogin in /etc/ssh/sshd_config, then run --rebuild")
['set', 'permitrootlogin', 'permit', 'root', 'login', 'in', '/etc/ssh/sshd_config', 'etc', 'ssh', 'sshd_config', 'sshd', 'config', 'then', 'run', '--rebuild', 'rebuild']

Chinese, Japanese and Korean are written without spaces between words (Korean between phrases),
so a run of their characters is no term: how it is cut is the index's build parameter ``cut``
(:data:`CUTS`), stored with the index (``index_state.lexical_cut``), and a query is cut the same
way. ``words`` is the cut of indexes from before it was stored: a run of such characters is one
term. ``cjk`` cuts the runs apart from the compounds around them ("编辑/etc/apt/sources.list文件"
keeps the path whole) and each run into its characters and their bigrams, as Lucene's
``CJKBigramFilter`` does with ``outputUnigrams``; it also keeps the scopes of ``APT::Get`` and
``std::vector`` whole, which ``words`` splits:

>>> lexical_terms("编辑/etc/apt/sources.list文件", cut="cjk")
['编', '编辑', '辑', '/etc/apt/sources.list', 'etc', 'apt', 'sources', 'list', '文', '文件', '件']

The lexical index then lower-cases and stems each term (English Porter stemmer), on the indexed
text and on the query alike. A query leaves out :data:`STOPWORDS` (:func:`query_terms`): they
say nothing of the topic, and their posting lists are the longest of the index.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["CUTS", "DEFAULT_CUT", "LEGACY_CUT", "MAX_TERM_CHARS", "STOPWORDS", "lexical_terms", "query_terms"]

LEGACY_CUT = "words"
"""The cut of an index that stores none (built before the cut was stored)."""
DEFAULT_CUT = "cjk"
"""The cut of a new build."""
CUTS = (LEGACY_CUT, DEFAULT_CUT)

MAX_TERM_CHARS = 64
"""Longer compounds are kept only as their parts (a base64 blob is no search term)."""

# The one stopword list of the project. Words that hold a sentence together or ask the question:
# a BM25 query leaves them out, and definition answers (``bertsearch.search.words``) add the two
# question words they may drop. "which" and "use" stay here (which() is a function of shutil and
# which(1) a command, and "use sort -u" answers "what can I use instead of uniq?"), and so do "not"
# and "no" everywhere ("no lines were selected" is not "a line is selected").
STOPWORDS = frozenset(
    "a an the of to in on at by for from with as is are be been being was were it its this that these those "
    "and or if what when where who whom whose why how do does did done has have had i you can could would "
    "should will".split())

# A compound: word characters joined by the punctuation of identifiers, paths, versions,
# options and addresses; a leading "/", "-", "--" or "~" belongs to it (a path, an option).
_COMPOUND = re.compile(r"(?:--?|/|~/?|\.)?\w+(?:[./:\-@+]\w+|/)*", re.UNICODE)
# The same with "::" between words (APT::Get, std::vector), for the cut "cjk".
_SCOPED_COMPOUND = re.compile(r"(?:--?|/|~/?|\.)?\w+(?:(?:::|[./:\-@+])\w+|/)*", re.UNICODE)
_PART = re.compile(r"[^\W_]+|_+", re.UNICODE)
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


# Han (with 々 and 〇), kana and Hangul: the scripts written without spaces between words.
_HAN = "\u3005\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
# The characters of those scripts, as the inside of a regex character class.
CJK_CHARS = f"{_HAN}\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
_CJK_RUN = re.compile(f"[{CJK_CHARS}]+")


def lexical_terms(text: str, cut: str = DEFAULT_CUT) -> list[str]:
    """The terms of ``text``, lower-cased, in order: each compound, then its parts; with the cut
    ``cjk``, each run of Chinese, Japanese or Korean characters as its characters and bigrams.

    Raises:
        ValueError: ``cut`` is not one of :data:`CUTS`.
    """
    if cut == LEGACY_CUT:
        return _compound_terms(text, _COMPOUND)
    try:
        cut_run = _RUN_CUTS[cut]
    except KeyError:
        raise ValueError(f"unknown lexical cut {cut!r} (known: {', '.join(CUTS)})") from None
    out: list[str] = []
    at = 0
    for run in _CJK_RUN.finditer(text):
        out.extend(_compound_terms(text[at:run.start()], _SCOPED_COMPOUND))
        out.extend(cut_run(run.group()))
        at = run.end()
    out.extend(_compound_terms(text[at:], _SCOPED_COMPOUND))
    return out


def _bigrams(run: str) -> list[str]:
    """Each character of ``run``, each followed by the bigram it starts."""
    out: list[str] = []
    for i, char in enumerate(run):
        out.append(char)
        if i + 1 < len(run):
            out.append(run[i:i + 2])
    return out


# How a run is cut, by cut name (``benchmarks/eval_zh_lexical.py`` adds the candidates it measures).
_RUN_CUTS: dict[str, Callable[[str], list[str]]] = {DEFAULT_CUT: _bigrams}


def _compound_terms(text: str, compound_pattern: re.Pattern[str]) -> list[str]:
    out: list[str] = []
    for match in compound_pattern.finditer(text):
        compound = match.group().rstrip("/")
        whole = compound.lower()
        parts = _parts(compound)
        if len(whole) <= MAX_TERM_CHARS and whole not in parts:
            out.append(whole)
        out.extend(p for p in parts if len(p) <= MAX_TERM_CHARS)
    return out


def query_terms(query: str, cut: str = DEFAULT_CUT) -> list[str]:
    """The terms of a query: :func:`lexical_terms` less :data:`STOPWORDS`, unless nothing else is
    left ("what is it?" is searched as it is).

    Chosen on 1,500 SQuAD train questions over 40 articles: BM25's recall@5 / MRR@10 went from
    0.936 / 0.859 to 0.943 / 0.870 (hybrid: 0.972 / 0.905 to 0.972 / 0.906), and a BM25 search of
    1,000,000 chunks from 9.3 ms to 1.5 ms (median).

    >>> query_terms("How do I keep the input files of gzip?")
    ['keep', 'input', 'files', 'gzip']
    """
    terms = lexical_terms(query, cut)
    return [t for t in terms if t not in STOPWORDS] or terms


def _parts(compound: str) -> list[str]:
    """``/etc/ssh/sshd_config`` -> etc, ssh, sshd_config, sshd, config; ``camelCase`` -> camelcase, camel, case."""
    parts: list[str] = []
    for piece in re.split(r"[./:\-@+~]+", compound):
        if not piece:
            continue
        words = [w for w in _PART.findall(piece) if not w.startswith("_")]
        if len(words) > 1 or piece.strip("_") != piece:
            parts.append(piece.lower())  # snake_case or __dunder__ as written
        for word in words:
            camel = _CAMEL.findall(word)
            parts.append(word.lower())
            if len(camel) > 1:
                parts.extend(c.lower() for c in camel)
    return parts
