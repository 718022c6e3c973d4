"""Plot search latency against index size from ``benchmarks/results/search.json``.

Writes ``benchmarks/results/search_latency.png``: median (solid) and 99th percentile (dashed)
latency of HTTP ``/search``, ``Searcher.search`` and FAISS alone, log-log.

Run: ``python benchmarks/plot.py [--input results/search.json] [--output results/search_latency.png]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

SERIES = (
    ("http_search", "HTTP POST /search", "tab:red"),
    ("library_search", "Searcher.search (encode + FAISS + SQL)", "tab:blue"),
    ("encode_only", "query encoding only", "tab:gray"),
    ("faiss_only", "FAISS only (Index.search)", "tab:green"),
    ("faiss_only_one_omp_thread", "FAISS only, one OpenMP thread", "tab:olive"),  # results before the cap
    ("faiss_only_all_omp_threads", "FAISS only, all OpenMP threads", "tab:olive"),  # since the cap
)


def plot(result: dict, output: Path) -> Path:
    """Draw the figure for a ``search`` result and save it as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["sizes"]
    sizes = [r["chunks"] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 5), dpi=120)
    for key, label, color in SERIES:
        if not all(key in r for r in rows):
            continue
        ax.plot(sizes, [r[key]["median_ms"] for r in rows], "o-", color=color, label=f"{label}, median")
        ax.plot(sizes, [r[key]["p99_ms"] for r in rows], "x--", color=color, alpha=0.6, label=f"{label}, p99")
    ax.axhline(50, color="black", linewidth=0.8, linestyle=":", label="50 ms goal (100k chunks, median)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"chunks in the index (exact FAISS IndexFlatIP, {result.get('dimension', '?')} dims)")
    ax.set_ylabel("latency (ms)")
    machine = result.get("machine", {})
    load = f"{machine.get('load_average_at_start')} -> {machine.get('load_average_at_end')}"
    ax.set_title(f"bertsearch search latency, top_k={result.get('top_k', 5)}\n"
                 f"{machine.get('cpu', '?')}, {machine.get('cpus_available', '?')} CPUs, load {load}, "
                 f"{result.get('date', '')[:10]}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output)
    plt.close(fig)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=HERE / "results" / "search.json")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "search_latency.png")
    args = parser.parse_args()
    if not args.input.is_file():
        parser.exit(2, f"Error: {args.input} not found; run `python benchmarks/search.py` first\n")
    out = plot(json.loads(args.input.read_text(encoding="utf-8")), args.output)
    print(json.dumps({"benchmark": "plot", "input": str(args.input), "output": str(out)}))


if __name__ == "__main__":
    main()
