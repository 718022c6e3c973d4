"""The extractive reader: a question and passages in, scored answer spans out.

Every passage is cut into overlapping windows (``max_seq_len`` tokens, ``stride`` shared); the
windows of all passages are sorted by length and run in as few padded batches as possible,
under ``torch.inference_mode`` and bf16 autocast where the CPU supports it.

Scores are probabilities, comparable across passages: within a window, the start and end
logits are soft-maxed over the context tokens plus the no-answer position (``[CLS]``), and a
span's score is ``P(start) * P(end)``, in [0, 1]. A passage's ``null_score`` is the same product
at ``[CLS]`` for its most answer-friendly window (the lowest over its windows): a span whose
score is below its ``null_score`` is one the model would rather not give.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bertsearch.indexer.common import torch_thread
from bertsearch.indexer.terms import CJK_CHARS
from bertsearch.search.definitions import entries, entry_span
from bertsearch.search.postprocess import SpanCandidate, merge_spans, window_spans
from bertsearch.search.windows import Windows, pad_windows, tokenize_windows


@dataclass(frozen=True)
class ReaderSpan:
    """One answer found by the reader.

    Attributes:
        text: The answer, ``passages[passage_index][start:end]``.
        score: ``P(start) * P(end)`` (see the module docstring), in [0, 1].
        passage_index: Which passage it comes from.
        start: First character in the passage.
        end: One past the last character.
        null_score: The passage's no-answer probability.
        logit: The span's raw ``start logit + end logit`` (unnormalised).
    """

    text: str
    score: float
    passage_index: int
    start: int
    end: int
    null_score: float
    logit: float


@dataclass(frozen=True)
class PairResult:
    """What a reader found in one (question, context) pair: its n-best spans (untrimmed, best
    first) and its no-answer score, both log-probabilities."""

    spans: list[SpanCandidate]
    null_score: float


class Reader:
    """An extractive QA model ready to read.

    Args:
        model_path: A QA model folder (see :mod:`bertsearch.search.qa_head`); ``None`` for the
            head shipped with bertsearch.
        precision: ``auto`` (bf16 autocast where the CPU has native bf16, else int8 when ONNX
            Runtime is installed, else fp32), ``bf16``, ``fp32`` or ``int8`` (ONNX Runtime with
            int8 weights, exported once and cached in ``cache_dir``).
        max_seq_len: Tokens per window.
        stride: Tokens shared by consecutive windows of one passage.
        batch_size: Windows per forward pass.
        threshold: Default minimum score of a returned span (see :meth:`read`).
        max_answer_len: Longest answer, in tokens.

    Raises:
        ModelLoadError: The model folder is missing or unusable.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        precision: str = "auto",
        max_seq_len: int = 256,
        stride: int = 96,
        batch_size: int = 32,
        threshold: float = 0.0,
        max_answer_len: int = 30,
        *,
        model: Any = None,
        tokenizer: Any = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        from bertsearch.indexer.common.precision import resolve
        from bertsearch.search.qa_head import default_qa_model_path, load_qa_model, takes_token_types

        self.precision = resolve(precision)
        self.use_bf16 = self.precision == "bf16"
        #: The model's folder; ``None`` for a model handed in without one.
        self.model_path: Path | None = (Path(model_path) if model_path is not None
                                        else default_qa_model_path() if model is None else None)
        if model is None:
            model, tokenizer = torch_thread.run(load_qa_model, model_path, "eager", cache_dir)  # PyTorch's threads: see torch_thread
        self.model = model.eval()
        self.tokenizer = tokenizer
        self._token_types = takes_token_types(self.model)
        inputs = ["input_ids", "attention_mask"] + (["token_type_ids"] if self._token_types else [])
        self._int8: Any = None
        if self.precision == "int8":
            from bertsearch.indexer import int8
            from bertsearch.indexer.common.settings import default_cache_dir
            from bertsearch.indexer.encoder import fingerprint

            # A model handed in without its folder is known by its weights, not by the default head's.
            key = (fingerprint(self.model_path) if self.model_path is not None
                   else torch_thread.run(_weights_fingerprint, self.model))
            onnx = torch_thread.run(int8.cached_model, self.model_path or "the model handed in", key,
                                    Path(cache_dir or default_cache_dir()), "qa", lambda: self.model,
                                    inputs, ["start_logits", "end_logits"])
            self._int8 = int8.Int8Session(onnx, torch_thread.run(_threads))
        self.max_seq_len = max_seq_len
        self.stride = stride
        self.batch_size = batch_size
        self.threshold = threshold
        self.max_answer_len = max_answer_len

    def read(
        self, question: str, passages: Sequence[str], top_n: int = 5, threshold: float | None = None
    ) -> list[ReaderSpan]:
        """The best answer spans to ``question`` found in ``passages``, best first.

        Args:
            question: The question.
            passages: The texts to read (e.g. retrieved chunks).
            top_n: At most this many spans (over all passages).
            threshold: Spans scoring below it are dropped (default: the reader's ``threshold``);
                when nothing reaches it the result is empty.

        Returns:
            Up to ``top_n`` spans, at most one per distinct (passage, start, end).
        """
        if not passages or not question.strip():
            return []
        limit = self.threshold if threshold is None else threshold
        return answer_spans(passages, self.read_pairs([question] * len(passages), passages), top_n, limit)

    def read_pairs(self, questions: Sequence[str], contexts: Sequence[str], n_best: int = 20) -> list[PairResult]:
        """For each (question, context) pair: its n-best spans and no-answer score (log space)."""
        windows = tokenize_windows(self.tokenizer, questions, contexts, self.max_seq_len, self.stride)
        start_logits, end_logits = self._logits(windows)
        per_pair: list[list[SpanCandidate]] = [[] for _ in questions]
        nulls = [0.0] * len(questions)
        seen = [False] * len(questions)
        for w in range(len(windows)):
            pair = windows.example_index[w]
            spans, null = window_spans(start_logits[w], end_logits[w], windows.offsets[w], n_best, self.max_answer_len)
            per_pair[pair].extend(spans)
            nulls[pair] = null if not seen[pair] else min(nulls[pair], null)
            seen[pair] = True
        return [PairResult(merge_spans(c)[:n_best], n) for c, n in zip(per_pair, nulls)]

    def _logits(self, windows: Windows) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return torch_thread.run(self._run_model, windows)

    def _run_model(self, windows: Windows) -> tuple[list[np.ndarray], list[np.ndarray]]:
        import torch

        n = len(windows)
        starts: list[np.ndarray] = [np.empty(0)] * n
        ends: list[np.ndarray] = [np.empty(0)] * n
        order = sorted(range(n), key=lambda i: -len(windows.input_ids[i]))
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.use_bf16):
            for lo in range(0, n, self.batch_size):
                idx = order[lo : lo + self.batch_size]
                ids, types, mask = pad_windows(windows.input_ids, windows.token_type_ids, idx)
                feed = {"input_ids": ids, "attention_mask": mask}
                if self._token_types:
                    feed["token_type_ids"] = types
                if self._int8 is not None:
                    s, e = self._int8(feed)[:2]
                else:
                    out = self.model(**{k: torch.from_numpy(v) for k, v in feed.items()})
                    s = out.start_logits.float().numpy()
                    e = out.end_logits.float().numpy()
                for row, i in enumerate(idx):
                    k = len(windows.input_ids[i])
                    starts[i], ends[i] = s[row, :k], e[row, :k]
        return starts, ends


def answer_spans(passages: Sequence[str], results: Sequence[PairResult], top_n: int, limit: float) -> list[ReaderSpan]:
    """The best ``top_n`` answers of the passages' read results, best first: each span trimmed to an
    answer (:func:`trim_span`, a definition entry's whole term), at most one per distinct (passage,
    start, end), none scoring below ``limit``."""
    best: dict[tuple[int, int, int], ReaderSpan] = {}
    for p, (passage, res) in enumerate(zip(passages, results)):
        null = math.exp(res.null_score)
        found = entries(passage)
        for c in res.spans:
            score = math.exp(c.score)
            start, end = entry_span(passage, found, *trim_span(passage, c.start, c.end))
            kept = best.get((p, start, end))
            if score >= limit and start < end and (kept is None or kept.score < score):
                # Two spans may become one (``-T`` and ``--print-type`` are ``-T, --print-type``).
                best[p, start, end] = ReaderSpan(passage[start:end], score, p, start, end, null, c.logit)
    return sorted(best.values(), key=lambda s: -s.score)[:top_n]


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _weights_fingerprint(model: Any) -> str:
    """A stable id of an in-memory model: its class, its config and a hash of every tensor of its
    state (shared tensors once)."""
    import hashlib

    import torch

    config = getattr(model, "config", None)
    digest = hashlib.sha256(type(model).__name__.encode() + b"\0")
    digest.update(config.to_json_string().encode() if config is not None else b"")
    seen: set[tuple[int, str]] = set()  # tied weights: the same storage, hashed once
    for name, tensor in sorted(model.state_dict().items()):
        key = (tensor.data_ptr(), f"{tensor.dtype}{tuple(tensor.shape)}{tensor.stride()}")
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        if key in seen:
            continue
        seen.add(key)
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())  # hashed in place
    return f"{type(model).__name__}@{digest.hexdigest()[:12]}"


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``text[start:end]`` without surrounding white space, and cut at its first blank line.

    An answer never runs across a paragraph break: in formatted documentation (man pages, option
    lists) a span that does is an option name followed by the next entry (``--summarize`` then
    ``--files0-from=F``). Returns an empty range when nothing but white space is left.
    """
    span = text[start:end]
    lead = len(span) - len(span.lstrip())
    span = span.strip()
    start += lead
    brk = re.search(r"\n[ \t]*\n", span)
    if brk is not None and span[: brk.start()].strip():
        span = span[: brk.start()].rstrip()
    end = start + len(span)
    start, end = _without_markup(text, start, end)
    if start >= end:
        return start, end
    return _whole_compounds(text, start, end)


# List and heading markup at a span's edges is no part of an answer: a Markdown heading's `#`s or
# a bullet before it (`## Options`, `- --keep`, `* item`), an asciidoc or reST term's colons after
# it (`--local::`, `Default:`), a table cell's pipe, and the marks of a code span or bold text
# around it. A mark is dropped only with its pair, or when the span holds no other such mark
# ("`ls -l` lists the files" keeps its code span whole).
_LEADING_MARKUP = re.compile(r"(?:#{1,6}[ \t]+|[-*+\u2022][ \t]+|\|[ \t]*)+")
_TRAILING_MARKUP = re.compile(r"(?:[ \t]*(?:::?|\|)|[,;，；、。：])+$")
_MARKS = ("``", "`", "**")
# A quotation mark or bracket at an edge whose pair the span does not hold was cut from its pair by
# the span's other end (`“x`, `-maxdepth 0'`, `(台式机`): it is dropped; a pair is kept (`ls(1)`).
_OPENERS = {'"': '"', "'": "'", "“": "”", "‘": "’", "「": "」", "『": "』", "«": "»", "(": ")", "[": "]", "（": "）",
            "《": "》", "【": "】", "〈": "〉"}
_CLOSERS = {close: open_ for open_, close in _OPENERS.items()}


def _without_markup(text: str, start: int, end: int) -> tuple[int, int]:
    for _ in range(4):  # a few layers at most: "- **`--keep`**:"
        before = (start, end)
        lead = _LEADING_MARKUP.match(text, start, end)
        if lead is not None:
            start = lead.end()
        trail = _TRAILING_MARKUP.search(text, start, end)
        if trail is not None:
            end = trail.start()
        span = text[start:end]
        for mark in _MARKS:
            if len(span) > 2 * len(mark) and span.startswith(mark) and span.endswith(mark):
                start, end = start + len(mark), end - len(mark)
                break
            if span.startswith(mark) and span.count(mark) == 1:
                start += len(mark)
                break
            if span.endswith(mark) and span.count(mark) == 1:
                end -= len(mark)
                break
        span = text[start:end]
        if len(span) > 1 and span[0] in _OPENERS and _OPENERS[span[0]] not in span[1:]:  # a lone `"` is an answer
            start += 1
        elif len(span) > 1 and span[-1] in _CLOSERS and _CLOSERS[span[-1]] not in span[:-1]:
            end -= 1
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if (start, end) == before:
            break
    return start, end


# Identifiers, paths, options, versions: what the tokenizer cuts into word pieces (`ffi_closure_alloc`
# is `ff ##i _ closure _ all ##oc`), so a span that ends inside one is widened to all of it. Chinese,
# Japanese and Korean characters are no part of one: a run of them has no spaces between its words
# (`默认发送TERM信号` holds the answer `TERM`), so the tokenizer's pieces are their bounds. A URL
# is one too: `://` joins its scheme (a span `www.intern:631` of `https://www.intern:631` is cut).
# A comma joins only an option's comma list (`-Wl,-z,defs`) and a number's thousands (`1,000`):
# elsewhere it ends a word (`-k, --keep`, `uid=0,gid=0`).
_WORD = f"[^\\W{CJK_CHARS}]"
_PART = rf"{_WORD}+(?:[.\-]{_WORD}+)*"
_COMPOUND = re.compile(rf"\d{{1,3}}(?:,\d{{3}})+(?!\d)|--?{_PART}(?:,--?{_PART})(?:,(?:--?)?{_PART})*"
                       rf"|(?:--?|/|~/?)?{_WORD}+(?:(?:://|[./:\-@+]){_WORD}+)*")


def _whole_compounds(text: str, start: int, end: int) -> tuple[int, int]:
    lo = max(0, start - 64)
    for m in _COMPOUND.finditer(text, lo, min(len(text), end + 64)):
        if m.start() < start < m.end():
            start = m.start()
        if m.start() < end < m.end():
            end = m.end()
        if m.start() >= end:
            break
    return start, end
