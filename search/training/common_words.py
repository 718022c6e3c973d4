"""The common English words that name no document (``search/common_words.txt``, read by
:mod:`bertsearch.search.naming`): the words of at least ``--min-count`` SQuAD train questions.

A man page called ``time`` or ``file`` is not what a question means by "time" or "file"; a word
general questions use this often is taken as a word, not as a document's name. SQuAD train only
(its questions are about Wikipedia, not about any documentation the reader is measured on).

Run: ``python -m bertsearch.search.training.common_words --train train-v1.1.json.gz --out search/common_words.txt``
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Sequence

from bertsearch.search.naming import words
from bertsearch.search.training.squad import load_squad

__all__ = ["common_words"]


def common_words(questions: Sequence[str], min_count: int) -> list[str]:
    """The words (:func:`~bertsearch.search.naming.words`) of at least ``min_count`` of ``questions``, sorted."""
    counts: Counter = Counter()
    for question in questions:
        counts.update(set(words(question)))
    return sorted(w for w, n in counts.items() if n >= min_count)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bertsearch.search.training.common_words",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--train", required=True, help="a SQuAD train file (.json or .json.gz)")
    parser.add_argument("--out", required=True, help="the word list to write, one word a line")
    parser.add_argument("--min-count", type=int, default=20, help="questions a word must occur in")
    args = parser.parse_args(argv)
    questions = [e.question for e in load_squad(args.train)]
    found = common_words(questions, args.min_count)
    Path(args.out).write_text("\n".join(found) + "\n", encoding="utf-8")
    print(f"{len(found)} words of at least {args.min_count} of {len(questions)} questions -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
