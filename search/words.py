"""Content words: what a question and a text share (the overlap feature of definition answers)."""

from __future__ import annotations

import re

from bertsearch.indexer.terms import STOPWORDS as QUERY_STOPWORDS

# The project's one stopword list (BM25 queries leave it out) plus the words a question of a
# definition list asks with, which say nothing of the entry it wants: "which option ..." and
# "what can I use ...". "not" and "no" are kept, as there: "no lines were selected" is not "a line
# is selected".
STOPWORDS = QUERY_STOPWORDS | frozenset({"which", "use", "used"})


def content_words(text: str) -> list[str]:
    """Lower-case words of ``text`` without :data:`STOPWORDS`, a plural -s dropped (``lines`` = ``line``)."""
    out = []
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if w not in STOPWORDS:
            out.append(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")) else w)
    return out
