"""``bertsearch index PATH --watch``: the change filter, and the watch itself with real inotify
(watchfiles), a real index and the tiny BERT; the signals on a real ``python -m bertsearch``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bertsearch.cli.main import cli
from bertsearch.indexer.common.errors import IndexLocked
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.index import Index
from bertsearch.indexer.models import Document
from bertsearch.indexer.watch import ChangeFilter, WatchRun, is_scratch, stop_on_signals, watch_folder
from bertsearch.search.searcher import Searcher

DEBOUNCE_MS = 150
WAIT_S = 20.0  # the longest any poll waits: a loaded CI machine, never the expected time


@pytest.mark.parametrize("name", [
    ".notes.md.swp", ".notes.md.swx", ".notes.md.swo", "notes.md.swp", "notes.md~", "#notes.md#", ".#notes.md",
    "4913", "5036", "report.pdf.part", "data.tmp", "file.crdownload", "NOTES.TMP",
])
def test_editor_and_download_scratch_names_are_scratch(name: str) -> None:
    assert is_scratch(name)


@pytest.mark.parametrize("name", ["notes.md", "README", "4912", "4914", "2024", "#notes.md", "swap.md", "a.sw"])
def test_document_names_are_not_scratch(name: str) -> None:
    assert not is_scratch(name)


def test_the_filter_keeps_only_changes_that_can_change_the_index(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "guides").mkdir(parents=True)
    (root / "drafts").mkdir()
    for rel in ("a.md", "guides/b.txt", "drafts/c.md", "image.png", "notes.log", "README"):
        (root / rel).write_text("x")
    db = tmp_path / "meta.db"
    keep = ChangeFilter(root, exclude=["drafts"], skip=[root / "idx", db, Path(f"{db}-wal")])
    kept = {rel: keep(None, str(root / rel)) for rel in (
        "a.md", "guides/b.txt", "README", "guides",  # documents, and a folder that holds some
        "gone.md", "gone-folder",  # deleted: a file or a folder, it cannot be told
        "drafts/c.md", "drafts", "drafts/gone.md",  # excluded
        "image.png", "notes.log",  # not read as documents
        ".git/index", ".git", ".hidden.md", "guides/.cache/x.md",  # hidden
        "idx/meta.db", "idx/lexical/1/meta.json", "idx",  # the index folder inside the folder
        "a.md.swp", "guides/4913", "a.md~",  # scratch
        "",  # the folder itself
    )}
    assert {rel for rel, k in kept.items() if k} == {"a.md", "guides/b.txt", "README", "guides", "gone.md",
                                                   "gone-folder"}
    assert not keep(None, str(db)) and not keep(None, str(tmp_path / "elsewhere.md"))
    # An include names what is read: *.log files become documents, and only matching files count.
    only_logs = ChangeFilter(root, include=["*.log"])
    assert only_logs(None, str(root / "notes.log"))
    assert not only_logs(None, str(root / "a.md"))
    assert only_logs(None, str(root / "guides")) and only_logs(None, str(root / "gone.md"))


class Watching:
    """``watch_folder`` in a thread, with its own :class:`Index` (as the CLI has), and its runs."""

    def __init__(self, settings: Settings, root: Path, **options) -> None:
        self.runs: list[WatchRun] = []
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self.returned: int | None = None
        self._thread = threading.Thread(target=self._main, args=(settings, root, options), daemon=True)
        self._thread.start()
        self.wait_runs(1)  # the first run: the watcher is started before it

    def _main(self, settings: Settings, root: Path, options: dict) -> None:
        try:
            with Index.open(settings, create=True) as index:
                self.returned = watch_folder(index, root, stop=self.stop, debounce_ms=DEBOUNCE_MS,
                                             on_run=self.runs.append, **options)
        except BaseException as exc:  # reported by the test's thread
            self.failure = exc

    def wait_runs(self, n: int) -> list[WatchRun]:
        _poll(lambda: len(self.runs) >= n or self.failure is not None, f"{n} runs")
        if self.failure is not None:
            raise self.failure
        return self.runs

    def close(self) -> None:
        self.stop.set()
        self._thread.join(WAIT_S)
        assert not self._thread.is_alive(), "the watch did not stop"
        if self.failure is not None:
            raise self.failure
        assert self.returned == len(self.runs)


def _poll(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT_S}s for {what}"
        time.sleep(0.02)


def _paths(index: Index) -> set[str]:
    index.refresh()
    with index.transaction() as s:
        return set(s.scalars(select(Document.path)))


@pytest.fixture
def watched(tmp_path: Path, tiny_bert_path: str):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "first.md").write_text("# First\n\nThe first document is about lighthouses.\n")
    settings = Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path)
    watching = Watching(settings, root)
    yield root, settings, watching
    watching.close()


def _lexical_paths(searcher: Searcher, query: str) -> set[str]:
    searcher.refresh()
    return {hit.path for hit in searcher.search(query, top_k=10, mode="lexical").hits}


def test_creates_edits_renames_and_deletes_reach_the_index_and_its_readers(watched) -> None:
    root, settings, watching = watched
    assert (watching.runs[0].summary.added, watching.runs[0].paths) == (1, [])
    with Index.open(Settings(index_dir=settings.index_dir)) as reader, \
            Searcher.open(Settings(index_dir=settings.index_dir)) as searcher:
        assert _lexical_paths(searcher, "lighthouses") == {"first.md"}

        (root / "sub").mkdir()
        (root / "sub" / "zebra.md").write_text("# Zebra\n\nStripes of the zebra.\n")
        _poll(lambda: "sub/zebra.md" in _paths(reader), "the created file")
        assert _lexical_paths(searcher, "stripes") == {"sub/zebra.md"}

        (root / "sub" / "zebra.md").write_text("# Zebra\n\nThe zebra grazes on savanna grass.\n")
        _poll(lambda: _lexical_paths(searcher, "savanna") == {"sub/zebra.md"}, "the edit")
        assert _lexical_paths(searcher, "stripes") == set()

        (root / "sub" / "zebra.md").rename(root / "okapi.md")
        _poll(lambda: _paths(reader) == {"first.md", "okapi.md"}, "the rename")
        assert _lexical_paths(searcher, "savanna") == {"okapi.md"}

        (root / "first.md").unlink()
        _poll(lambda: _paths(reader) == {"okapi.md"}, "the deletion")
        assert _lexical_paths(searcher, "lighthouses") == set()

        (root / "sub").rename(root / "moved")  # a folder moved: its files go with it
        (root / "moved" / "inside.md").write_text("a file inside a moved folder\n")
        _poll(lambda: _paths(reader) == {"okapi.md", "moved/inside.md"}, "the moved folder")
        info = reader.info()
        assert info["chunks"] == info["faiss_vectors"] == info["lexical_chunks"]
    assert all(run.paths for run in watching.runs[1:]), "every later run was started by a change"


def test_scratch_files_and_excluded_files_start_no_run(tmp_path: Path, tiny_bert_path: str) -> None:
    root = tmp_path / "docs"
    (root / "drafts").mkdir(parents=True)
    (root / "kept.md").write_text("kept\n")
    # The index folder inside the watched folder: its own writes must not start runs.
    settings = Settings(index_dir=root / "index", model_path=tiny_bert_path)
    watching = Watching(settings, root, exclude=["drafts"])
    try:
        generation = _generation(settings)
        for rel in (".kept.md.swp", "kept.md~", "#kept.md#", "4913", "report.pdf.part", "x.tmp",
                    "drafts/plan.md", "picture.png"):
            (root / rel).write_text("scratch")
        os.symlink("user@host.1234", root / ".#kept.md")
        (root / ".git" / "objects").mkdir(parents=True)
        (root / ".git" / "objects" / "ab").write_text("blob")
        (root / "4913").unlink()
        (root / "x.tmp").rename(root / "y.tmp")
        # A real change after them: had any of them passed the filter, it would have started a run
        # of its own or be listed among this run's paths.
        (root / "sentinel.md").write_text("sentinel\n")
        runs = watching.wait_runs(2)
        assert [run.paths for run in runs[1:]] == [["sentinel.md"]]
        assert _generation(settings) == generation + 1
        # The run's own writes into the index folder start nothing either.
        (root / "sentinel.md").write_text("sentinel, edited\n")
        assert [run.paths for run in watching.wait_runs(3)[1:]] == [["sentinel.md"], ["sentinel.md"]]
    finally:
        watching.close()
    assert len(watching.runs) == 3


def _generation(settings: Settings) -> int:
    with Index.open(Settings(index_dir=settings.index_dir)) as index:
        return index.info()["generation"]


def test_a_burst_of_writes_is_one_run(watched) -> None:
    root, settings, watching = watched
    generation = _generation(settings)
    for i in range(40):
        (root / f"burst-{i:02d}.md").write_text(f"# Burst {i}\n\nDocument number {i} of a burst.\n")
    _poll(lambda: sum(run.summary.added for run in watching.runs[1:]) >= 40, "the runs of the burst")
    later = watching.runs[1:]
    assert 1 <= len(later) <= 2, [len(run.paths) for run in later]
    assert sum(run.summary.added for run in later) == 40
    # A commit holds up to COMMIT_CHUNKS chunks: 40 small files are one generation per run.
    assert _generation(settings) - generation == len(later)


def test_a_run_that_meets_another_writer_is_tried_again(tmp_path: Path, tiny_bert_path: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from bertsearch.indexer import watch

    monkeypatch.setattr(watch, "RETRY_AFTER_S", 0.3)
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.md").write_text("alpha\n")
    settings = Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path)
    retries: list[Exception] = []
    watching = Watching(settings, root, on_retry=retries.append)
    try:
        with Index.open(Settings(index_dir=settings.index_dir)) as other, other.writer_lock():
            (root / "b.md").write_text("beta\n")
            _poll(lambda: len(retries) >= 2, "the locked run to be tried again")  # again while it is held
            assert len(watching.runs) == 1
        runs = watching.wait_runs(2)
        assert runs[1].summary.added == 1 and runs[1].paths == [], "the retry ran without a new change"
    finally:
        watching.close()
    assert all(isinstance(exc, IndexLocked) for exc in retries)


def test_watch_refuses_a_missing_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["index", str(tmp_path / "nowhere"), "--watch", "--index", str(tmp_path / "i")])
    assert result.exit_code == 1 and result.output.startswith("Error: not a folder"), result.output
    result = CliRunner().invoke(cli, ["index", str(tmp_path), "--watch", "--debounce", "0"])
    assert result.exit_code == 2 and "--debounce" in result.output


def test_a_signal_during_a_run_lets_it_commit_then_stops_the_watch(tmp_path: Path, tiny_bert_path: str) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.md").write_text("alpha\n")

    class SignalledMidRun:
        """The index, with SIGTERM sent to this process as its second run begins."""

        def __init__(self, index: Index) -> None:
            self.index, self.calls = index, 0

        def __getattr__(self, name: str):
            return getattr(self.index, name)

        def update(self, *args, **kwargs):
            self.calls += 1
            if self.calls == 2:
                os.kill(os.getpid(), signal.SIGTERM)
            return self.index.update(*args, **kwargs)

    def on_run(run: WatchRun) -> None:
        runs.append(run)
        if len(runs) == 1:
            (root / "b.md").write_text("beta\n")

    runs: list[WatchRun] = []
    stop = threading.Event()
    safety = threading.Timer(WAIT_S, stop.set)  # ends a watch the signal failed to stop
    safety.start()
    before = signal.getsignal(signal.SIGTERM)
    try:
        with Index.open(Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path), create=True) as index:
            with stop_on_signals(stop):
                returned = watch_folder(SignalledMidRun(index), root, stop=stop, debounce_ms=DEBOUNCE_MS,
                                        on_run=on_run)
            assert _paths(index) == {"a.md", "b.md"}
    finally:
        safety.cancel()
    assert returned == len(runs) == 2 and runs[1].summary.added == 1, "the run in progress finished, then it stopped"
    assert signal.getsignal(signal.SIGTERM) is before


def test_ctrl_c_stops_the_watch_command_cleanly(tmp_path: Path, tiny_bert_path: str) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.md").write_text("# A\n\nalpha\n")
    idx = tmp_path / "idx"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bertsearch.cli", "index", str(root), "--watch", "--index", str(idx),
         "--model", tiny_bert_path, "--debounce", str(DEBOUNCE_MS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    err: list[str] = []
    reading = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    reading.start()
    settings = Settings(index_dir=idx)
    try:
        _poll(lambda: any("watching" in line for line in err) or proc.poll() is not None, "the watch to start")
        assert proc.poll() is None, "".join(err)
        (root / "b.md").write_text("# B\n\nbeta\n")
        with Index.open(settings) as reader:
            _poll(lambda: _paths(reader) == {"a.md", "b.md"}, "the new file")
        for i in range(20):  # a run may be in progress when the signal comes: it finishes first
            (root / f"c{i}.md").write_text(f"gamma {i}\n")
        time.sleep(DEBOUNCE_MS / 1000 * 2)
        proc.send_signal(signal.SIGINT)
        proc.wait(WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reading.join(WAIT_S)
    out, err_text = proc.stdout.read(), "".join(err)
    assert proc.returncode == 0, err_text
    assert "stopped watching" in err_text and "Traceback" not in err_text, err_text
    assert out.splitlines()[0].startswith("1 added, 0 updated, 0 unchanged"), out
    with Index.open(settings) as index:
        info = index.info()
        assert index.last_repair is None, "the derived files were left as SQL has them"
        assert info["chunks"] == info["faiss_vectors"] == info["lexical_chunks"]
        committed = _paths(index)
        assert {"a.md", "b.md"} <= committed
    # A plain run finds every committed document whole (unchanged) and adds only what the
    # stopped watch had not committed yet.
    result = CliRunner().invoke(cli, ["index", str(root), "--index", str(idx), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert (summary["unchanged"], summary["added"], summary["updated"], summary["removed"], summary["failed"]) == (
        len(committed), 22 - len(committed), 0, 0, 0)
