"""SQuAD paragraphs as a folder of documents: the layout the benchmarks and the fits index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bertsearch.search.training.corpus import document_path, pid_of_path, slug, write_corpus


@dataclass(frozen=True)
class _Para:
    pid: int
    title: str
    context: str


def test_slug_keeps_a_folder_name_safe() -> None:
    assert slug("Super_Bowl_50") == "Super_Bowl_50"
    assert slug("Warsaw / Pact (1955)") == "Warsaw_Pact_1955"
    assert slug("Études-1") == "tudes-1"
    assert slug("...") == slug("") == "untitled"
    assert len(slug("x" * 200)) == 80


def test_corpus_round_trip_rewrites_only_what_changed(tmp_path: Path) -> None:
    paragraphs = [_Para(0, "Rivers", "The Nile flows north."), _Para(1, "Rivers", "The Amazon is wide."),
                  _Para(12, "Mount Everest", "It is 8,849 metres high.")]
    folder = write_corpus(paragraphs, tmp_path / "docs")
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.txt"))
    assert files == ["Mount_Everest/00012.txt", "Rivers/00000.txt", "Rivers/00001.txt"]
    for p in paragraphs:
        path = document_path(folder, p.title, p.pid)
        assert path.read_text(encoding="utf-8") == p.context and pid_of_path(str(path)) == p.pid
    mtimes = {f: (folder / f).stat().st_mtime_ns for f in files}
    (folder / "Rivers/00001.txt").write_text("stale text", encoding="utf-8")
    write_corpus(paragraphs, folder)
    assert (folder / "Rivers/00001.txt").read_text(encoding="utf-8") == "The Amazon is wide."
    assert all((folder / f).stat().st_mtime_ns == mtimes[f] for f in files if f != "Rivers/00001.txt")
