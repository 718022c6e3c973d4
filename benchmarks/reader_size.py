"""What a bigger reader costs: reading 10 passages with the shipped head against larger backbones.

The answer goals of the reader issue (SQuAD v1.1 dev F1 84, 80% right on the held-out documents)
ask more of the shipped head's encoder (all-MiniLM-L6-v2: 6 layers, 384 wide) than it has given
(see "reader size" in ``benchmarks/README.md``); its latency goal (``/ask`` reading 10 passages
in 250 ms on a 2-core CPU) asks for little compute. This times the part that grows with the
reader, ``Reader.read`` of one question over its 10 retrieved passages (real chunks of an index of
SQuAD v1.1 dev paragraphs, as ``ask`` reads them), for each reader in turn question by question,
at each precision:

- ``shipped``: the shipped head (the reference);
- ``multilingual``: the shipped multilingual head (multilingual-e5-small: 12 layers, 384 wide);
- ``base-768``: an UNTRAINED ``BertForQuestionAnswering`` of 12 layers, 768 wide, 3,072 in its
  feed-forward layers, with the packaged tokenizer: the size of all-mpnet-base-v2 (and BERT-base),
  the bigger backbone the registries hold. Its answers mean nothing; its speed is that size's.

Retrieval and answer assembly are left out: they are the same for every reader (``benchmarks/ask.py``
times the whole path).

Run: ``python benchmarks/reader_size.py [--precisions bf16,int8] [--questions 30]``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

import _common as c

PASSAGES = 10
BASE_768 = {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072}


def main(args: Any) -> dict[str, Any]:
    from bertsearch.indexer.common.precision import resolve
    from bertsearch.indexer.index import Index
    from bertsearch.search.qa_head import default_qa_model_path, multilingual_qa_model_path
    from bertsearch.search.reader import Reader
    from bertsearch.search.searcher import Searcher
    from bertsearch.search.windows import tokenize_windows

    paragraphs, questions = c.load_squad(c.squad_v1_dev(args.squad_dir), max_paragraphs=30 if args.smoke else None)
    settings, built = c.squad_index(args, paragraphs)
    n = args.questions or (3 if args.smoke else 30)
    rng = np.random.default_rng(0)
    asked = [questions[i].question for i in rng.choice(len(questions), size=min(n, len(questions)), replace=False)]
    with Searcher(Index.open(settings)) as searcher:
        read = [(q, [hit.text for hit in searcher.retrieve(q, PASSAGES, mode="hybrid")]) for q in asked]

    folders = {"shipped": Path(args.qa_model) if args.qa_model else default_qa_model_path(),
               "multilingual": multilingual_qa_model_path(),
               "base-768": _untrained_base(args.work_dir / ("untrained-qa-base-768-smoke" if args.smoke
                                                            else "untrained-qa-base-768"), args.smoke)}
    results: dict[str, Any] = {}
    for precision in dict.fromkeys(resolve(p) for p in args.precisions.split(",")):  # auto is bf16 or int8 here
        readers = {name: Reader(folder, precision=precision) for name, folder in folders.items()}
        for reader in readers.values():  # warm: first calls allocate
            for q, passages in read[:2]:
                reader.read(q, passages, top_n=20, threshold=0.0)
        seconds: dict[str, list[float]] = {name: [] for name in readers}
        windows: dict[str, list[int]] = {name: [] for name in readers}
        for q, passages in read:  # in turn, question by question: a busy moment slows each alike
            for name, reader in readers.items():
                began = time.perf_counter()
                reader.read(q, passages, top_n=20, threshold=0.0)
                seconds[name].append(time.perf_counter() - began)
                windows[name].append(len(tokenize_windows(reader.tokenizer, [q] * len(passages), passages,
                                                          reader.max_seq_len, reader.stride)))
        shipped_p50 = float(np.median(seconds["shipped"]))
        results[precision] = {
            name: {**c.latency_stats(seconds[name]), "x_shipped_p50": round(float(np.median(s)) / shipped_p50, 2),
                   "windows_per_question": round(float(np.mean(windows[name])), 1),
                   **_size(readers[name].model)}
            for name, s in seconds.items()}
    return {
        "what": f"Reader.read of one question over its {PASSAGES} retrieved passages, by reader and precision",
        "readers": {name: c.shown(folder) for name, folder in folders.items()},
        "base_768_note": "UNTRAINED (random weights): the speed of a 12-layer 768-wide BERT, the size of "
                         "all-mpnet-base-v2; its answers mean nothing",
        "corpus": {"documents": built["documents"], "chunks": built["chunks"], "chunk_tokens": built["chunk_tokens"],
                   "source": "SQuAD v1.1 dev paragraphs, one document each; hybrid retrieval"},
        "questions": len(read),
        "by_precision": results,
    }


def _untrained_base(folder: Path, smoke: bool) -> Path:
    """An untrained 12-layer 768-wide ``BertForQuestionAnswering`` with the packaged tokenizer
    (2 layers with ``smoke``), saved in ``folder`` once."""
    if not (folder / "config.json").is_file():
        import torch
        from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

        from bertsearch.indexer.common.settings import packaged_encoder_path

        torch.manual_seed(0)
        tokenizer = AutoTokenizer.from_pretrained(packaged_encoder_path())
        size = BASE_768 | ({"num_hidden_layers": 2} if smoke else {})
        BertForQuestionAnswering(BertConfig(vocab_size=tokenizer.vocab_size, **size)).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder


def _size(model: Any) -> dict[str, int]:
    config = model.config
    return {"layers": int(config.num_hidden_layers), "hidden": int(config.hidden_size),
            "parameters_m": int(round(sum(p.numel() for p in model.parameters()) / 1e6))}


if __name__ == "__main__":
    p = c.parser("reader_size", __doc__)
    c.add_squad_option(p)
    c.add_model_options(p, qa=True)
    p.add_argument("--precisions", default="auto,int8",
                   help="comma-separated precisions, each timed for every reader (default auto,int8)")
    p.add_argument("--questions", type=int, default=None, help="questions timed (default 30; 3 with --smoke)")
    c.run("reader_size", main, p.parse_args())
