"""Load under change: concurrent clients on a real ``bertsearch serve`` while ``bertsearch index``
commits generations and a ``--rebuild`` runs.

The server serves a copy of ``samples/docs``. A writer changes the folder and runs
``bertsearch index`` ``--generations`` times (each run commits one or more generations: a file
edited, a file added, one removed), then ``bertsearch index --rebuild`` once. Meanwhile
``--clients`` threads send ``POST /search`` and ``POST /ask`` in turn (loopback only, each client
bounded in requests and time). A request fails when it gets no answer or a status other than 200,
or when a hit is not whole (no text, offsets out of order): a hit whose chunk was deleted under it
would show as one of these. Latency p50/p99 is reported per route.

Run: ``python benchmarks/load.py`` (packaged encoder and shipped QA head).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import _common as c

QUESTIONS = [
    "How long are rotated logs kept?", "When is the full backup taken?", "Where are backups stored?",
    "How do I restore a backup?", "What port does the service listen on?", "How are logs rotated?",
]


def main(args: Any) -> dict[str, Any]:
    work = args.work_dir / ("smoke" if args.smoke else "") / "load"
    shutil.rmtree(work, ignore_errors=True)
    docs, index_dir = work / "docs", work / "idx"
    shutil.copytree(c.REPO / "samples" / "docs", docs)
    model = ["--model", args.model] if args.model else []
    _index(docs, index_dir, model)

    stop = threading.Event()
    results: list[list[dict[str, Any]]] = [[] for _ in range(args.clients)]
    writer: dict[str, Any] = {}
    with c.server(index_dir, qa_model=args.qa_model) as (base, pid):
        clients = [threading.Thread(target=_client, args=(base, n, stop, results[n], args), daemon=True)
                   for n in range(args.clients)]
        for t in clients:
            t.start()
        began = time.perf_counter()
        try:
            writer = _write(docs, index_dir, model, args.generations)
        finally:
            stop.set()
            for t in clients:
                t.join(timeout=args.request_timeout + 5)
        seconds = time.perf_counter() - began
        # The server follows new generations by itself (a poll, then the change applied): wait for
        # it to serve the last one, and say how long that took after the writer ended.
        written = _generation(index_dir)
        ended = time.perf_counter()
        final_generation = c.wait_for_generation(base, written, timeout=30, poll=0.05)
        caught_up = time.perf_counter() - ended
        server_rss = c.rss_mb(pid)

    calls = [r for rs in results for r in rs]
    by_route: dict[str, Any] = {}
    for route in ("/search", "/ask"):
        mine = [r for r in calls if r["route"] == route]
        ok = [r["seconds"] for r in mine if r["ok"]]
        by_route[route] = {"requests": len(mine), "failed": len(mine) - len(ok),
                           **(c.latency_stats(ok) if ok else {})}
    failures = [r for r in calls if not r["ok"]]
    return {
        "what": "concurrent /search and /ask on a real server while `bertsearch index` commits and rebuilds",
        "clients": args.clients,
        "writer": writer,
        "final_generation": final_generation,
        "written_generation": written,
        "server_caught_up_s": round(caught_up, 3),
        "seconds": round(seconds, 1),
        "requests": len(calls),
        "failed_requests": len(failures),
        "failure_examples": failures[:5],
        "empty_results": sum(1 for r in calls if r["ok"] and r["empty"]),
        "routes": by_route,
        "server_rss_mb": server_rss,
    }


def _index(docs: Path, index_dir: Path, model: list[str], *extra: str) -> float:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bertsearch.cli", "index", str(docs), "--index", str(index_dir),
                           "--quiet", *model, *extra], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"bertsearch index {' '.join(extra)} failed: {done.stdout[-500:]}{done.stderr[-1500:]}")
    return time.perf_counter() - began


def _generation(index_dir: Path) -> int:
    from bertsearch.indexer.common.settings import Settings
    from bertsearch.indexer.snapshot import read_params
    from bertsearch.indexer.store import open_engine

    engine = open_engine(Settings(index_dir=index_dir).resolved_db_url())
    try:
        from sqlalchemy.orm import sessionmaker

        params = read_params(sessionmaker(engine))
        return params.generation if params else 0
    finally:
        engine.dispose()


def _write(docs: Path, index_dir: Path, model: list[str], generations: int) -> dict[str, Any]:
    runs = []
    for g in range(generations):
        with open(docs / "logging.md", "a", encoding="utf-8") as fh:
            fh.write(f"\nUpdate {g}: rotated logs are now kept for {10 + g} days.\n")
        (docs / f"note-{g}.txt").write_text(f"Note {g}: the backup window moved to {g % 24:02d}:00.\n")
        if g >= 2:
            (docs / f"note-{g - 2}.txt").unlink()
        runs.append(_index(docs, index_dir, model))
    rebuild = _index(docs, index_dir, model, "--rebuild")
    return {"index_runs": len(runs), "index_run_seconds_median": round(sorted(runs)[len(runs) // 2], 2),
            "rebuild_seconds": round(rebuild, 2)}


def _client(base: str, n: int, stop: threading.Event, out: list[dict[str, Any]], args: Any) -> None:
    import httpx

    deadline = time.monotonic() + args.max_seconds
    with httpx.Client(base_url=base, timeout=args.request_timeout) as http:
        i = n
        while not stop.is_set() and time.monotonic() < deadline and len(out) < args.max_requests:
            question = QUESTIONS[i % len(QUESTIONS)]
            route = "/search" if i % 2 == 0 else "/ask"
            body = {"query": question} if route == "/search" else {"question": question, "passages": 3}
            began = time.perf_counter()
            record: dict[str, Any] = {"route": route, "ok": False, "empty": False}
            try:
                response = http.post(route, json=body)
                record["seconds"] = time.perf_counter() - began
                record["status"] = response.status_code
                if response.status_code == 200:
                    data = response.json()
                    items = data["hits"] if route == "/search" else data["answers"]
                    record["empty"] = not items
                    record["ok"] = all(_whole(item, route) for item in items)
                    if not record["ok"]:
                        record["detail"] = "a hit that is not whole"
                else:
                    record["detail"] = response.text[:300]
            except httpx.HTTPError as exc:
                record["seconds"] = time.perf_counter() - began
                record["detail"] = f"{type(exc).__name__}: {exc}"
            out.append(record)
            i += 1


def _whole(item: dict[str, Any], route: str) -> bool:
    if route == "/search":
        return bool(item["text"]) and 0 <= item["start"] < item["end"] and bool(item["path"])
    return bool(item["path"]) and bool(item["context"]) and item["start"] <= item["end"]


if __name__ == "__main__":
    p = c.parser("load", __doc__)
    c.add_model_options(p, qa=True)
    p.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    p.add_argument("--generations", type=int, default=20, help="`bertsearch index` runs, each with changes")
    p.add_argument("--max-requests", type=int, default=2000, help="requests per client at most")
    p.add_argument("--max-seconds", type=float, default=900.0, help="seconds per client at most")
    p.add_argument("--request-timeout", type=float, default=60.0, help="seconds a request may take")
    c.run("load", main, p.parse_args())
