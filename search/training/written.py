"""Question-answer pairs written by people about the training sources, turned into SQuAD articles.

The generator in :mod:`~bertsearch.search.training.techqa` asks about list entries in a few
templates; a reader trained on it learns the templates. These pairs are written the way users ask
(paraphrased, about prose as well as lists) over the same allowed sources. Each pair names its
document (``path``, relative to the sources folder made by ``scripts/make-techqa-sources``), its
``answer`` and an ``evidence`` span of the document around the answer, so the answer's place is
exact even where its words occur more than once.

Every pair becomes up to two training paragraphs, both as the reader meets text at run time:
the chunk of the document that holds the answer, cut by the indexer's own ``chunk_text`` at the
default chunk size (where two chunks overlap the answer, one of them at random), and a passage of
whole lines around it (:func:`techqa.passage`). A share of the pairs (``--negative-ratio``) also
asks its question of another chunk of the same document, one without the answer, labelled
unanswerable: the passages retrieval brings beside the right one. With ``--negatives-index`` (an
index of the sources folder, or of part of it: ``bertsearch index`` keeps paths relative to the
folder, so they are the pairs' paths) each pair is also asked of up to ``--retrieved-negatives`` of
the passages that index retrieves for its question (hybrid, the top 10) which do not hold the
answer (white space folded): the neighbouring page's option, the other tool's dry run, the passages
``ask`` reads beside the right one and ranks answers from. Passages of reserved and held-out
documents are skipped, and so are those of another document of the same name as the pair's
(``syslog.2`` beside ``python/syslog``, a page of another section), which may answer it in other words.
Documents the dev split reserves (:mod:`~bertsearch.search.training.reserved`) are refused.
``--holdout-frac`` moves the pairs of a share of the documents (:func:`techqa.held_out`: the same
documents ``techqa --holdout-frac`` holds out) into ``OUT.heldout.json``, for calibration and
reliability on train-source questions the reader was not trained on.

Run: ``python -m bertsearch.search.training.written SOURCES --out written.json QUESTIONS.json...``
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from bertsearch.search.naming import file_name_words
from bertsearch.search.training.reserved import is_reserved
from bertsearch.search.training.techqa import VERSION, held_out, mix_squad, passage

__all__ = ["Pair", "build", "load_pairs", "locate", "retriever"]


@dataclass(frozen=True)
class Pair:
    """One written question: its document, answer and the evidence span around the answer."""

    question: str
    answer: str
    evidence: str
    path: str
    kind: str = ""


def load_pairs(files: Sequence[str | Path]) -> list[Pair]:
    """The pairs of the question files (``{"questions": [{"q", "answer", "evidence", "path"}]}``)."""
    pairs = []
    for f in files:
        for item in json.loads(Path(f).read_text(encoding="utf-8"))["questions"]:
            pairs.append(Pair(item["q"].strip(), item["answer"], item["evidence"], item["path"], item.get("kind", "")))
    return pairs


def locate(text: str, pair: Pair) -> tuple[int, int] | None:
    """The answer's character span in ``text``: inside the first occurrence of the evidence (or
    the answer alone where it occurs once); ``None`` where neither places it."""
    at = text.find(pair.evidence) if pair.evidence else -1
    if at >= 0:
        inner = pair.evidence.find(pair.answer)
        if inner >= 0:
            return at + inner, at + inner + len(pair.answer)
    if pair.answer and text.count(pair.answer) == 1:
        at = text.find(pair.answer)
        return at, at + len(pair.answer)
    return None


def build(pairs: Sequence[Pair], texts: dict[str, str], tokenizer: Any, chunk_tokens: int, chunk_overlap: int,
          seed: int = 0, negative_ratio: float = 0.3,
          retrieved: Callable[[Pair], Sequence[str]] | None = None, per_pair: int = 0) -> tuple[dict, Counter]:
    """The SQuAD object of the pairs (one article per document) and the counts of what it holds.

    ``retrieved`` gives the passages retrieval ranks for a pair's question, best first; the first
    ``per_pair`` of them that do not hold the answer (white space folded) are asked the question,
    labelled unanswerable.
    """
    from bertsearch.indexer.chunking import chunk_text

    counts: Counter = Counter()
    by_doc: dict[str, list[Pair]] = {}
    for pair in pairs:
        if is_reserved(pair.path):
            raise ValueError(f"{pair.path} is reserved for the dev set and cannot be trained on")
        by_doc.setdefault(pair.path, []).append(pair)
    data = []
    for path in sorted(by_doc):
        text = texts.get(path)
        if text is None:
            counts["pairs_without_document"] += len(by_doc[path])
            continue
        rng = random.Random(f"{seed}:{path}")
        chunks = chunk_text(text, tokenizer, chunk_tokens, chunk_overlap)
        doc_id = hashlib.sha1(path.encode()).hexdigest()[:10]
        paragraphs: list[dict[str, Any]] = []
        for n, pair in enumerate(by_doc[path]):
            span = locate(text, pair)
            if span is None:
                counts["pairs_not_found"] += 1
                continue
            lo, hi = span
            holding = [k for k, c in enumerate(chunks) if c.start <= lo and hi <= c.end]
            contexts = []
            if holding:
                k = rng.choice(holding)
                contexts.append((chunks[k].start, chunks[k].end))
            contexts.append(passage(text, lo, hi, rng, (120, 220)))
            group = f"w{doc_id}-{n}"  # the passages this pair is asked of compete (shared normalisation)
            for m, (cs, ce) in enumerate(contexts):
                qa = {"id": f"{group}-{m}", "group": group, "question": pair.question, "kind": pair.kind or "written",
                      "answers": [{"text": text[lo:hi], "answer_start": lo - cs}]}
                paragraphs.append({"context": text[cs:ce], "qas": [qa]})
                counts["questions"] += 1
            counts["pairs"] += 1
            counts[f"kind:{pair.kind or 'written'}"] += 1
            answer = text[lo:hi].lower()
            others = [c for c in chunks if answer not in c.text.lower() and len(c.text.split()) >= 40]
            if others and rng.random() < negative_ratio:
                qa = {"id": f"{group}-neg", "group": group, "question": pair.question, "kind": pair.kind or "written",
                      "answers": [], "is_impossible": True}
                paragraphs.append({"context": rng.choice(others).text, "qas": [qa]})
                counts["negatives"] += 1
            if retrieved is not None and per_pair > 0:
                folded = " ".join(answer.split())
                misses = [t for t in retrieved(pair) if folded not in " ".join(t.lower().split())][:per_pair]
                for m, context in enumerate(misses):
                    qa = {"id": f"{group}-ret{m}", "group": group, "question": pair.question,
                          "kind": pair.kind or "written",
                          "answers": [], "is_impossible": True}
                    paragraphs.append({"context": context, "qas": [qa]})
                counts["retrieved_negatives"] += len(misses)
        if paragraphs:
            data.append({"title": path, "paragraphs": paragraphs})
            counts["documents"] += 1
    return {"version": VERSION, "data": data}, counts


def retriever(searcher: Any, holdout_frac: float) -> Callable[[Pair], list[str]]:
    """The passages ``searcher`` retrieves for a pair's question (hybrid, the top 10), best first,
    without those of reserved or held-out documents, or of another document named as the pair's."""
    def retrieved(pair: Pair) -> list[str]:
        name = file_name_words(pair.path)
        return [hit.text for hit in searcher.retrieve(pair.question, 10, mode="hybrid")
                if not (is_reserved(hit.path) or held_out(hit.path, holdout_frac)
                        or (hit.path != pair.path and file_name_words(hit.path) == name))]
    return retrieved


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bertsearch.search.training.written", description=__doc__.split("\n")[0])
    parser.add_argument("sources", help="the sources folder (scripts/make-techqa-sources)")
    parser.add_argument("questions", nargs="+", help="question files")
    parser.add_argument("--out", required=True, help="the SQuAD JSON file to write")
    parser.add_argument("--model", default=None, help="the encoder whose tokenizer cuts the chunks (default: the packaged one)")
    parser.add_argument("--add", action="append", default=[], help="a SQuAD file whose articles are appended (e.g. techqa's)")
    parser.add_argument("--mix-squad", help="a SQuAD train file whose articles are added to the output")
    parser.add_argument("--squad-limit", type=int, default=40, help="SQuAD articles to add")
    parser.add_argument("--repeat", type=int, default=1, help="times the written articles appear")
    parser.add_argument("--negative-ratio", type=float, default=0.3,
                        help="share of pairs also asked of a chunk of their document without the answer")
    parser.add_argument("--negatives-index", type=Path,
                        help="an index of the training documents whose retrieved passages serve as negatives")
    parser.add_argument("--retrieved-negatives", type=int, default=2,
                        help="with --negatives-index: retrieved passages without the answer asked of each pair")
    parser.add_argument("--holdout-frac", type=float, default=0.0,
                        help="share of documents whose pairs go to OUT.heldout.json (and whose --add articles are left out)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from bertsearch.indexer.common.settings import Settings, packaged_encoder_path
    from bertsearch.indexer.documents import read_document
    from bertsearch.indexer.named_models import resolve_model

    settings = Settings()
    model = resolve_model(args.model or settings.model_path or packaged_encoder_path(), settings.cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
    pairs = load_pairs(args.questions)
    root = Path(args.sources)
    texts = {}
    for path in sorted({p.path for p in pairs}):
        if (root / path).is_file():
            texts[path] = read_document(root / path).text
    kept = [p for p in pairs if not held_out(p.path, args.holdout_frac)]
    with contextlib.ExitStack() as stack:
        retrieved = None
        if args.negatives_index is not None:
            from bertsearch.search.searcher import Searcher

            searcher = stack.enter_context(Searcher.open(Settings(index_dir=args.negatives_index)))
            retrieved = retriever(searcher, args.holdout_frac)
        obj, counts = build(kept, texts, tokenizer, settings.chunk_tokens, settings.chunk_overlap, args.seed,
                            args.negative_ratio, retrieved, args.retrieved_negatives)
    if args.holdout_frac > 0:
        heldout, held_counts = build([p for p in pairs if held_out(p.path, args.holdout_frac)], texts, tokenizer,
                                     settings.chunk_tokens, settings.chunk_overlap, args.seed, args.negative_ratio)
        counts.update({f"heldout:{k}": v for k, v in held_counts.items()})
        Path(args.out).with_name(Path(args.out).name.removesuffix(".json") + ".heldout.json").write_text(
            json.dumps(heldout, ensure_ascii=False), encoding="utf-8")
    obj["data"] = [dict(a, title=a["title"] if r == 0 else f"{a['title']}#{r}") for r in range(args.repeat) for a in obj["data"]]
    for extra in args.add:
        added = json.loads(Path(extra).read_text(encoding="utf-8"))["data"]
        left_out = {id(a) for a in added if is_reserved(a["title"]) or held_out(a["title"], args.holdout_frac)}
        obj["data"].extend(a for a in added if id(a) not in left_out)
        counts["added_articles"] += len(added) - len(left_out)
        counts["added_left_out"] += len(left_out)
    if args.mix_squad:
        counts["squad_questions"] = mix_squad(obj, args.mix_squad, args.squad_limit, args.seed)
    Path(args.out).write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    for key in sorted(counts):
        print(f"{key}\t{counts[key]}")
    print(f"wrote\t{args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
