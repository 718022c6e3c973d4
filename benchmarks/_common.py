"""Helpers shared by the benchmark scripts: machine facts, timing, memory, SQuAD, a real server.

Every script prints one JSON object on stdout and writes it to ``benchmarks/results/<name>.json``
(``--smoke`` runs write under ``benchmarks/work/smoke/`` instead, so they never replace real
results). Each result carries the machine it was measured on, including the load average: on a
shared machine the numbers are only as quiet as the neighbours.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bertsearch.indexer.chunk_headers import HEADERS
from bertsearch.search.training.corpus import pid_of_path, write_corpus  # noqa: F401  (the scripts' c.write_corpus)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
WORK = HERE / "work"  # ignored by git: corpora, indexes, caches
DEFAULT_SQUAD_DIR = REPO.parent / "shared" / "data" / "squad"
SQUAD_V1_DEV = ("dev-v1.1.json.gz", "dev-v1.1.json")
SQUAD_V1_TRAIN = "train-v1.0-reconstructed.json.gz"


def shown(path: str | Path) -> str:
    """A model or file as a result records it: relative to the repository when inside it."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


def fit_source(answer_model: str | Path | None, large_reader: str | None, qa_model: str | Path | None = None) -> str:
    """Which answer model a searcher read with, as a result records it: the file given, the pair's
    fit in the large reader's folder, the QA head's own, or the shipped one."""
    from bertsearch.search.confidence import MODEL_FILE, PAIR_MODEL_FILE

    if answer_model:
        return shown(answer_model)
    if large_reader and (Path(large_reader) / PAIR_MODEL_FILE).is_file():
        return shown(Path(large_reader) / PAIR_MODEL_FILE)
    if qa_model and (Path(qa_model) / MODEL_FILE.name).is_file():
        return shown(Path(qa_model) / MODEL_FILE.name)
    return "shipped"


class Skip(Exception):
    """The benchmark cannot run here (e.g. the SQuAD files are absent); the message says why."""


# -- command line and output -----------------------------------------------------------------


def parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares."""
    p = argparse.ArgumentParser(
        prog=f"python benchmarks/{name}.py",
        description=(doc or "").strip().split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--smoke", action="store_true",
                   help="a tiny run that only checks the script works (results under WORK_DIR/smoke/)")
    p.add_argument("--output", type=Path, default=None,
                   help=f"where to write the JSON (default: benchmarks/results/{name}.json)")
    p.add_argument("--work-dir", type=Path, default=WORK, help="folder for corpora and indexes (kept between runs)")
    return p


def add_squad_option(p: argparse.ArgumentParser) -> None:
    """``--squad-dir``: the folder of the SQuAD files."""
    p.add_argument("--squad-dir", type=Path, default=DEFAULT_SQUAD_DIR,
                   help="folder holding dev-v1.1.json(.gz)")


def add_chunk_header_option(p: argparse.ArgumentParser) -> None:
    """``--chunk-header``: build the index with this ``chunk_header`` (an index of its own)."""
    p.add_argument("--chunk-header", choices=HEADERS, default=None,
                   help="build the index with this chunk header, in an index of its own (default: the setting's)")


def add_model_options(p: argparse.ArgumentParser, qa: bool = False) -> None:
    """``--model`` (encoder folder) and, with ``qa``, ``--qa-model``."""
    p.add_argument("--model", default=None, help="encoder model folder (default: the packaged all-MiniLM-L6-v2)")
    if qa:
        p.add_argument("--qa-model", default=None,
                       help="QA model folder (default: the shipped head; if it is missing, an untrained head "
                            "of the same architecture, which measures speed but not quality)")


def output_path(name: str, args: argparse.Namespace) -> Path:
    """Where the result goes: ``--output``, else results/ (or WORK_DIR/smoke/ for ``--smoke``)."""
    if args.output is not None:
        return args.output
    return (args.work_dir / "smoke" if args.smoke else RESULTS) / f"{name}.json"


def run(name: str, main: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``main(args) -> dict``, add the machine and versions, print one JSON object and write it.

    A :class:`Skip` prints ``{"benchmark": name, "skipped": reason}`` (and writes nothing).
    """
    load_at_start = load_average()
    started = time.perf_counter()
    try:
        body = main(args)
    except Skip as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        print(json.dumps({"benchmark": name, "skipped": str(exc)}))
        return {"skipped": str(exc)}
    result = {
        "benchmark": name,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/" + name + ".py " + " ".join(sys.argv[1:]),
        "smoke": bool(args.smoke),
        **body,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "machine": machine(load_at_start),
        "versions": versions(),
    }
    out = output_path(name, args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False))
    return result


def machine(load_at_start: list[float] | None = None) -> dict[str, Any]:
    """What the numbers were measured on, and how busy it was."""
    from bertsearch.indexer.encoder import cpu_has_native_bf16

    cpu = platform.processor()
    with contextlib.suppress(OSError, StopIteration):
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cpus = os.cpu_count()
    mem_gb = None
    with contextlib.suppress(OSError, ValueError):
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu": cpu,
        "cpus_available": cpus,
        "memory_gb": mem_gb,
        "native_bf16": cpu_has_native_bf16(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch_threads": _torch_threads(),
        "omp_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY") if k in os.environ},
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
        "note": "load average = runnable processes over 1, 5, 15 min; above the CPU count means "
                "the benchmark shared the CPUs with other work",
    }


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else None


def versions() -> dict[str, str]:
    """Versions of the libraries that set the speed."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("bertsearch", "torch", "transformers", "faiss-cpu", "sqlalchemy", "fastapi", "uvicorn",
                 "sentence-transformers"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


# -- timing and memory -----------------------------------------------------------------------


def latency_stats(seconds: Sequence[float]) -> dict[str, float]:
    """Median, p90, p99, mean, min and max of a list of durations, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    if ms.size == 0:
        return {"n": 0}
    return {
        "n": int(ms.size),
        "median_ms": round(float(np.median(ms)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "min_ms": round(float(ms.min()), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def time_calls(fn: Any, items: Sequence[Any], warmup: int = 5) -> list[float]:
    """Call ``fn(item)`` for each item (after ``warmup`` untimed calls); the durations in seconds."""
    for item in list(items)[:warmup]:
        fn(item)
    out = []
    for item in items:
        began = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - began)
    return out


def rss_mb(pid: int | None = None) -> float | None:
    """Resident memory of a process now (``VmRSS``), in MiB."""
    return _proc_status_mb(pid, "VmRSS")


def peak_rss_mb(pid: int | None = None) -> float | None:
    """Peak resident memory of a process so far (``VmHWM``), in MiB."""
    value = _proc_status_mb(pid, "VmHWM")
    if value is None and pid is None:
        value = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    return value


def _proc_status_mb(pid: int | None, key: str) -> float | None:
    try:
        with open(f"/proc/{pid or 'self'}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS (Linux >= 4.0); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


# -- SQuAD -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paragraph:
    """One SQuAD paragraph: its index in the file (0-based), article title and text."""

    pid: int
    title: str
    context: str


@dataclass(frozen=True)
class Question:
    """One SQuAD question, the paragraph it was asked on, and its gold answers."""

    qid: str
    question: str
    pid: int
    answers: tuple[str, ...]


def squad_v1_dev(squad_dir: Path) -> Path:
    """The SQuAD v1.1 dev file in ``squad_dir``.

    Raises:
        Skip: It is not there.
    """
    for name in SQUAD_V1_DEV:
        if (squad_dir / name).is_file():
            return squad_dir / name
    raise Skip(f"SQuAD v1.1 dev not found in {squad_dir} (looked for {' or '.join(SQUAD_V1_DEV)}); "
               "pass --squad-dir")


def load_squad(path: Path, max_paragraphs: int | None = None) -> tuple[list[Paragraph], list[Question]]:
    """The paragraphs and questions of a SQuAD file (plain or gzipped JSON), in file order: the first
    ``max_paragraphs`` paragraphs and their questions (read by ``bertsearch.search.training.squad``)."""
    from bertsearch.search.training.squad import squad_paragraphs

    paragraphs: list[Paragraph] = []
    questions: list[Question] = []
    for para in squad_paragraphs(path):
        if max_paragraphs is not None and para.pid >= max_paragraphs:
            break
        paragraphs.append(Paragraph(para.pid, para.title, para.context))
        questions.extend(Question(ex.id, ex.question, para.pid, tuple(a.text for a in ex.answers))
                         for ex in para.examples)
    return paragraphs, questions


def index_folder(folder: Path, index_dir: Path, model: str | None = None,
                 chunk_header: str | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """``folder`` indexed into ``index_dir`` with ``Index.update`` (the packaged encoder, or
    ``model``; the default chunk header, or ``chunk_header``; each in an index of its own, named by
    the header it is built with, so that an index kept from a run under another default is never
    reused for this one): the settings, the run's summary and ``Index.info()``."""
    from bertsearch.indexer import Index, Settings

    if model:
        index_dir = index_dir.with_name(f"{index_dir.name}-{Path(model).name}")
    header = chunk_header or Settings().chunk_header
    index_dir = index_dir.with_name(f"{index_dir.name}-header-{header}")
    settings = Settings(index_dir=index_dir, chunk_header=header, **({"model_path": model} if model else {}))
    with Index.open(settings, create=True) as index:
        summary = index.update(folder)
        info = index.info()
    return settings, summary, info


def squad_index(args: argparse.Namespace, paragraphs: Sequence[Paragraph], name: str = "squad-v1.1-dev",
                precision: str = "auto") -> tuple[Any, dict]:
    """Settings of an index of ``paragraphs`` as documents, built (or brought up to date) with
    ``Index.update``, the path of ``bertsearch index``; and what that run did. A ``precision``
    other than ``auto`` has an index of its own (an int8 index is no bf16 one)."""
    from bertsearch.indexer.index import Index
    from bertsearch.indexer.common.settings import Settings

    if precision != "auto":
        name = f"{name}-{precision}"
    tag = "smoke" if args.smoke else "full"
    if args.model:  # an index per encoder: another model's would be rebuilt, then rebuilt back
        name = f"{name}-{Path(args.model).name}"
    header = getattr(args, "chunk_header", None) or Settings().chunk_header
    name = f"{name}-header-{header}"  # and per chunk header (never an index kept from another default)
    corpus = write_corpus(paragraphs, args.work_dir / f"{name}-{tag}" / "docs")
    settings = Settings(index_dir=args.work_dir / f"{name}-{tag}" / "index", precision=precision,
                        **({"model_path": args.model} if args.model else {}),
                        chunk_header=header)
    with Index.open(settings, create=True) as index:
        summary = index.update(corpus)
        info = index.info()
    return Settings(index_dir=settings.index_dir, precision=precision), {"update": summary.to_dict(), "documents": info["documents"],
                                                    "chunks": info["chunks"], "model_id": info["model_id"],
                                                    "chunk_tokens": info["chunk_tokens"],
                                                    "chunk_overlap": info["chunk_overlap"],
                                                    "chunk_header": info["chunk_header"]}


# -- QA models -------------------------------------------------------------------------------


def qa_model_for_speed(args: argparse.Namespace) -> tuple[str | None, str]:
    """The QA model folder to time, and a note on what it is.

    ``--qa-model`` if given; else the shipped head if it is installed; else an *untrained*
    ``BertForQuestionAnswering`` with the packaged MiniLM's encoder weights and a random head
    (same architecture and size as the shipped head, so the same speed; its answers mean nothing).
    """
    from bertsearch.search.qa_head import default_qa_model_path

    if args.qa_model:
        return args.qa_model, f"--qa-model {args.qa_model}"
    if (default_qa_model_path() / "config.json").is_file():
        return None, f"the shipped head ({default_qa_model_path()})"
    folder = args.work_dir / "untrained-qa-minilm"
    if not (folder / "config.json").is_file():
        import torch
        from transformers import AutoTokenizer, BertForQuestionAnswering

        from bertsearch.indexer.common.settings import packaged_encoder_path

        torch.manual_seed(0)
        model = BertForQuestionAnswering.from_pretrained(packaged_encoder_path())
        model.save_pretrained(folder)
        AutoTokenizer.from_pretrained(packaged_encoder_path()).save_pretrained(folder)
    return str(folder), ("UNTRAINED: BertForQuestionAnswering from the packaged all-MiniLM-L6-v2 with a random "
                         "span head (no shipped head installed yet); same architecture as the shipped head, so "
                         "latency is representative, answers are not")


# -- a real server ---------------------------------------------------------------------------


class Perturbations:
    """Vectors with the structure of real ones: real embeddings (``bases``) plus Gaussian noise along
    their top ``components`` principal directions with their variances, L2-normalised."""

    def __init__(self, bases: np.ndarray, rng: np.random.Generator, components: int = 64) -> None:
        self.bases = np.asarray(bases, dtype=np.float32)
        self.rng = rng
        _, s, vt = np.linalg.svd(self.bases - self.bases.mean(0), full_matrices=False)
        self.directions = vt[:components].astype(np.float32)
        self.scale = (s[:components] / np.sqrt(len(self.bases))).astype(np.float32)

    def sample(self, n: int) -> tuple[np.ndarray, float]:
        """``n`` perturbed vectors and their mean cosine to the real vector each came from."""
        pick = self.bases[self.rng.integers(0, len(self.bases), n)]
        noise = (self.rng.standard_normal((n, len(self.scale))).astype(np.float32) * self.scale) @ self.directions
        out = pick + noise
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out, float(np.mean(np.sum(out * pick, axis=1))) if n else 1.0


def wait_for_generation(base: str, target: int, timeout: float, poll: float = 0.02) -> int:
    """Call ``GET /health`` on the server at ``base`` until it serves ``target`` (or ``timeout``
    seconds pass); returns the generation it serves then."""
    import httpx

    began = time.perf_counter()
    with httpx.Client(base_url=base, timeout=60) as http:
        while True:
            served = int(http.get("/health").json()["generation"])
            if served >= target or time.perf_counter() - began > timeout:
                return served
            time.sleep(poll)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(index_dir: Path, qa_model: str | None = None, timeout: float = 300.0,
           precision: str | None = None, large_reader: str | None = None) -> Iterator[tuple[str, int]]:
    """Run ``bertsearch serve`` (a real uvicorn process) on a free loopback port, at ``precision``
    (``BERTSEARCH_PRECISION``; ``None``: the environment's), with ``large_reader`` (``--large-reader``).

    Yields ``(base_url, pid)`` once ``/health`` answers; stops the server on exit.
    """
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "bertsearch.cli", "serve", "--index", str(index_dir), "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning"]
    if qa_model:
        cmd += ["--qa-model", str(qa_model)]
    if large_reader:
        cmd += ["--large-reader", str(large_reader)]
    log = open(Path(index_dir).parent / f"serve-{port}.log", "w+b")  # noqa: SIM115
    env = {**os.environ, **({"BERTSEARCH_PRECISION": precision} if precision else {})}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"bertsearch serve exited with {proc.returncode}: "
                                   f"{log.read().decode(errors='replace')[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/health", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"bertsearch serve did not answer /health within {timeout:.0f}s")
            time.sleep(0.25)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
