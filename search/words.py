"""Content words: what a question and a text share (the overlap feature of definition answers)."""

from __future__ import annotations

import re

# The commonest words of questions and documentation, which say nothing of the topic. "not" and
# "no" are kept: "no lines were selected" is not "a line is selected".
STOPWORDS = frozenset(
    "a an the of to in on at by for from with as is are be been being was were it its this that these those "
    "and or if which what when where who whom whose why how do does did done has have had i you can could "
    "would should will use used".split())


def content_words(text: str) -> list[str]:
    """Lower-case words of ``text`` without :data:`STOPWORDS`, a plural -s dropped (``lines`` = ``line``)."""
    out = []
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if w not in STOPWORDS:
            out.append(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")) else w)
    return out
