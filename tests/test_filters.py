"""Metadata and the `where` filter: each operator against a plain reference on random metadata
(hypothesis); filtered searches against an exact search over the matching chunks (both
retrievers, flat and HNSW); the metadata the readers find in real files; bad filters refused
with their bad part named (the core, the CLI, a real server)."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bertsearch.cli.main import cli
from bertsearch.indexer.common.errors import InvalidQuery
from bertsearch.indexer.common.settings import Settings
from bertsearch.indexer.documents import read_document
from bertsearch.indexer.filters import parse_where
from bertsearch.indexer.index import Index
from bertsearch.indexer.metadata import guess_language
from bertsearch.indexer.models import ChunkRow, Document

from _server import serve

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# -- the operators against a plain reference --------------------------------------------------

_FIELDS = ["a", "b", "c"]
_SCALARS = st.one_of(st.sampled_from(["x", "y", "2020-01-01", "2021-06-30"]), st.integers(-2, 3),
                     st.sampled_from([0.5, 2.0, -1.5]), st.booleans())
_VALUES = st.one_of(_SCALARS, st.lists(st.sampled_from(["x", "y", "z"]), max_size=3))
_METADATA = st.dictionaries(st.sampled_from(_FIELDS), _VALUES, max_size=3)


def _condition() -> st.SearchStrategy[dict[str, Any]]:
    field = st.sampled_from(_FIELDS)
    ordered = st.one_of(st.integers(-2, 3), st.sampled_from([0.5, "2020-06-01", "x"]))
    op = st.one_of(
        st.tuples(st.sampled_from(["$eq", "$ne"]), _SCALARS),
        st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), ordered),
        st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(_SCALARS, min_size=1, max_size=3)),
        st.tuples(st.just("$contains"), st.sampled_from(["x", "y", "z"])),
    )
    return st.builds(lambda f, o: {f: {o[0]: o[1]}}, field, op) | st.builds(lambda f, v: {f: v}, field, _SCALARS)


_WHERE = st.recursive(_condition(), lambda inner: st.builds(
    lambda op, parts: {op: parts}, st.sampled_from(["$and", "$or"]), st.lists(inner, min_size=1, max_size=3)),
    max_leaves=6)


def _kind(v: Any) -> str:
    return "bool" if isinstance(v, bool) else "num" if isinstance(v, (int, float)) else type(v).__name__


def reference(where: dict[str, Any], meta: dict[str, Any]) -> bool:
    """The semantics the README states, written out plainly."""
    results = []
    for key, cond in where.items():
        if key == "$and":
            results.append(all(reference(p, meta) for p in cond))
            continue
        if key == "$or":
            results.append(any(reference(p, meta) for p in cond))
            continue
        ops = cond if isinstance(cond, dict) else {"$eq": cond}
        for op, want in ops.items():
            has, got = key in meta, meta.get(key)

            def eq(w: Any) -> bool:
                return has and _kind(got) == _kind(w) and got == w

            if op == "$eq":
                results.append(eq(want))
            elif op == "$ne":
                results.append(not eq(want))
            elif op == "$in":
                results.append(any(eq(w) for w in want))
            elif op == "$nin":
                results.append(not any(eq(w) for w in want))
            elif op == "$contains":
                results.append(has and isinstance(got, list) and want in got)
            elif op == "$glob":  # the paths here are one folder deep
                results.append(has and isinstance(got, str) and PurePosixPath(got).match(want))
            else:
                comparable = has and _kind(got) == _kind(want) and _kind(got) in ("num", "str")
                results.append(comparable and {"$gt": got > want if comparable else False,
                                               "$gte": got >= want if comparable else False,
                                               "$lt": got < want if comparable else False,
                                               "$lte": got <= want if comparable else False}[op])
    return all(results)


@settings(max_examples=400, deadline=None)
@given(_WHERE, _METADATA)
def test_every_operator_agrees_with_the_reference(where: dict[str, Any], meta: dict[str, Any]) -> None:
    assert parse_where(where).matches(meta) == reference(where, meta)


def test_a_glob_matches_as_path_glob_does() -> None:
    where = parse_where({"path": {"$glob": "docs/*.md"}})
    assert where.matches({"path": "docs/a.md"}) and not where.matches({"path": "docs/sub/a.md"})
    assert parse_where({"path": {"$glob": "*.md"}}).matches({"path": "deep/er/a.md"})
    assert not where.matches({}) and not where.matches({"path": 3})


def test_the_same_filter_in_another_order_has_the_same_key() -> None:
    one = parse_where({"a": 1, "$or": [{"b": True}, {"c": {"$in": ["x", 2]}}]})
    two = parse_where({"$or": [{"c": {"$in": ["x", 2]}}, {"b": True}], "a": 1})
    assert one.key == two.key
    assert parse_where({"a": True}).key != parse_where({"a": 1}).key


@pytest.mark.parametrize(("where", "named"), [
    ([{"a": 1}], "where: a filter must be a JSON object"),
    ({"a": {"$regex": "x"}}, "where.a.$regex: unknown operator"),
    ({"$not": {"a": 1}}, "where.$not: unknown operator"),
    ({"$or": {"a": 1}}, "where.$or: expects a non-empty list"),
    ({"$and": [{"a": 1}, {"b": {"$gt": [1]}}]}, "where.$and[1].b.$gt: expects a number or a string"),
    ({"a": {"$in": []}}, "where.a.$in: expects a list"),
    ({"a": {"$contains": 3}}, "where.a.$contains: expects a string"),
    ({"a": None}, "where.a: expects a string, number or boolean, not null"),
    ({"a": {}}, "where.a: an empty object"),
    ({"path": {"$glob": "[z-a]"}}, "where.path.$glob: invalid glob"),
    ({"a": {"$eq": float("inf")}}, "where.a.$eq: not a finite number"),
    ({"$or": [{"$or": [{"$or": [{"$or": [{"$or": [{"$or": [{"$or": [{"$or": [{"$or": [{"a": 1}]}]}]}]}]}]}]}]}]},
     "nested more than 8 levels"),
])
def test_a_bad_filter_names_its_bad_part(where: Any, named: str) -> None:
    with pytest.raises(InvalidQuery) as refused:
        parse_where(where)
    assert named in str(refused.value)


# -- metadata the readers find -----------------------------------------------------------------

def test_front_matter_is_metadata_and_not_text(tmp_path: Path) -> None:
    page = tmp_path / "post.md"
    page.write_text("---\ntitle: Rotating logs\nauthor: Ana\ntags: [ops, logs]\ndate: 2024-03-01\n"
                    "draft: false\nweight: 3\nnested: {a: 1}\n---\n\n# Heading\n\nLogs rotate weekly.\n")
    loaded = read_document(page)
    assert loaded.text == "# Heading\n\nLogs rotate weekly.\n"
    assert (loaded.title, loaded.kind) == ("Rotating logs", "markdown")
    assert loaded.metadata == {"title": "Rotating logs", "author": "Ana", "tags": ["ops", "logs"],
                               "date": "2024-03-01", "draft": False, "weight": 3}


def test_a_malformed_front_matter_is_logged_and_the_page_still_reads(tmp_path: Path, caplog) -> None:
    page = tmp_path / "broken.md"
    page.write_text("---\ntitle: [unclosed\n---\n# Broken\n\nStill indexed.\n")
    with caplog.at_level(logging.WARNING, logger="bertsearch.indexer.documents"):
        loaded = read_document(page)
    assert loaded.text == page.read_text() and loaded.metadata == {}  # nothing lost: it is all text
    assert "front matter is not valid YAML" in caplog.text and "broken.md" in caplog.text
    # A rule and a setext heading at the start is no front matter: the text stays whole.
    plain = tmp_path / "rule.md"
    plain.write_text("---\nJust a heading\n---\nbody\n")
    assert read_document(plain).text == "---\nJust a heading\n---\nbody\n"


def test_html_meta_and_lang_are_metadata(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text('<html lang="de-AT"><head><title>Gannets</title><meta name="Author" content="Jo  Smith">'
                    '<meta name="keywords" content="birds, sea"><meta charset="utf-8"></head>'
                    "<body><p>Gannets dive.</p></body></html>")
    loaded = read_document(page)
    assert (loaded.title, loaded.kind) == ("Gannets", "html")
    assert loaded.metadata == {"author": "Jo Smith", "keywords": "birds, sea", "language": "de"}


def test_pdf_title_and_author_are_metadata(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(FIXTURES / "heldout" / "bash" / "job-control.pdf"))
    writer.add_metadata({"/Title": "Job control", "/Author": "Chet Ramey"})
    pdf = tmp_path / "job.pdf"
    with open(pdf, "wb") as fh:
        writer.write(fh)
    loaded = read_document(pdf)
    assert (loaded.kind, loaded.metadata) == ("pdf", {"title": "Job control", "author": "Chet Ramey"})
    assert "job" in loaded.text.lower()


def test_the_language_is_guessed_from_the_script() -> None:
    assert guess_language("日志每周轮换一次，保留四周。") == "zh"
    assert guess_language("ログは毎週ローテーションされます。") == "ja"
    assert guess_language("로그는 매주 교체됩니다") == "ko"
    assert guess_language("Logs rotate weekly. 日志") == "en"
    assert guess_language("1234 !!") == "en"


def test_a_folder_document_carries_its_facts_and_the_callers_fields_win(tmp_path: Path, tiny_bert_path: str) -> None:
    from bertsearch.indexer.ingest import DocumentPut, apply_changes

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("---\nlanguage: fr\nteam: infra\n---\nLes journaux tournent.\n")
    (docs / "b.txt").write_text("日志每周轮换一次。")
    with Index.open(Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path), create=True) as index:
        index.update(docs)
        apply_changes(index, [DocumentPut("k", text="Some text.", metadata={"type": "note", "team": "web"})])
        a = index.reader.document_by_key("a.md", source="folder").metadata
        b = index.reader.document_by_key("b.txt", source="folder").metadata
        k = index.reader.document_by_key("k").metadata
    st = (docs / "a.md").stat()
    assert a == {"title": "a.md", "language": "fr", "team": "infra", "type": "markdown", "size": st.st_size,
                 "mtime": st.st_mtime}
    assert (b["language"], b["type"]) == ("zh", "text")
    assert (k["type"], k["team"], k["language"], k["title"]) == ("note", "web", "en", "k")


# -- filtered search against an exact search over the matching chunks ---------------------------

_TEAMS = ["infra", "web", "data"]
_WORDS = ("logs rotate backup disk quota network firewall kernel upgrade cache memory thread socket "
          "queue index shard replica latency timeout retry").split()


@pytest.fixture(scope="module")
def tagged_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 Markdown pages with random front matter (team, year, tags, draft) and random words."""
    rng = random.Random(7)
    root = tmp_path_factory.mktemp("tagged")
    for n in range(60):
        tags = rng.sample(["ops", "dev", "sec"], rng.randint(0, 2))
        front = {"team": rng.choice(_TEAMS), "year": rng.randint(2018, 2024), "tags": tags,
                 "draft": rng.random() < 0.3}
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(30, 200)))
        folder = root / ("guides" if n % 3 == 0 else "notes")
        folder.mkdir(exist_ok=True)
        (folder / f"page{n:02d}.md").write_text(f"---\n{json.dumps(front)}\n---\n# Page {n}\n\n{words}\n")
    return root


_FILTERS = [
    {"team": "infra"},
    {"year": {"$gte": 2022}},
    {"tags": {"$contains": "sec"}},
    {"$or": [{"team": {"$in": ["web", "data"]}}, {"draft": True}]},
    {"$and": [{"team": {"$ne": "web"}}, {"path": {"$glob": "guides/*.md"}}]},
    {"year": {"$lt": 2020}, "tags": {"$nin": ["ops"]}},
    {"team": "nobody"},
]


@pytest.mark.parametrize(("index_kind", "graph_search"), [("flat", False), ("hnsw", False), ("hnsw", True)],
                         ids=["flat", "hnsw-exact-subset", "hnsw-graph-with-selector"])
def test_filtered_hits_are_the_exact_search_over_the_matching_chunks(
    tagged_docs: Path, tiny_bert_path: str, tmp_path: Path, index_kind: str, graph_search: bool, monkeypatch,
    db_url: str,
) -> None:
    monkeypatch.setenv("BERTSEARCH_INDEX_TYPE", index_kind)
    if graph_search:
        import bertsearch.indexer.vectors as vectors

        monkeypatch.setattr(vectors, "EXACT_SUBSET_MAX", 0)  # a small graph, ef_search above its size: exact
    settings = Settings(index_dir=tmp_path / "idx", db_url=db_url, model_path=tiny_bert_path)
    with Index.open(settings, create=True) as index:  # SQLite, and PostgreSQL when configured
        index.update(tagged_docs)
        assert index.snapshot.vectors.kind == index_kind
        with index.transaction() as s:
            rows = s.execute(select(ChunkRow.id, ChunkRow.vector, Document.path, Document.meta, Document.source)
                             .join(Document, ChunkRow.document_id == Document.id)).all()
        ids = np.asarray([r[0] for r in rows])
        vectors = np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows])
        fields = [{**r[3], "path": r[2], "source": r[4]} for r in rows]
        queries = ["disk quota on the backup shard", "network latency and retry", "kernel memory"]
        checked = 0
        for where in _FILTERS:
            matching = np.asarray([reference(where, f) for f in fields])
            for query in queries:
                vector = index.encoder.encode([query])[0]
                got = index.search(vector, 8, where=where)
                scores = vectors[matching] @ vector
                order = np.argsort(-scores, kind="stable")[:8]
                assert [c for c, _ in got] == ids[matching][order].tolist(), (where, query)
                assert np.allclose([s for _, s in got], scores[order], atol=1e-5)

                lexical = index.search_lexical(query, 8, where=where)
                allowed = set(ids[matching].tolist())
                everything = [(c, s) for c, s in index.search_lexical(query, 10_000) if c in allowed][:8]
                assert [round(s, 4) for _, s in lexical] == [round(s, 4) for _, s in everything], (where, query)
                last = everything[-1][1] if len(everything) == 8 else -1.0
                assert {c for c, s in lexical if s > last + 1e-4} == {c for c, s in everything if s > last + 1e-4}
                checked += len(got)
        assert checked > 50  # the filters let something through


def _same_top(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    """The same scores in the same order (to float32 rounding) and the same chunks above the last
    score (ties at the cut may be either)."""
    assert len(got) == len(want)
    assert np.allclose([s for _, s in got], [s for _, s in want], rtol=1e-6, atol=1e-6), (got, want)
    last = want[-1][1] if want else 0.0
    assert {c for c, s in got if s > last + 1e-4} == {c for c, s in want if s > last + 1e-4}


def test_bm25_within_a_subsets_terms_is_tantivys_search_within_it(tmp_path: Path) -> None:
    """Scored from the chunks' own terms: the scores tantivy gives, on chunks of every length (its
    lengths are rounded to one byte past 40 tokens), after removals (its statistics count them)."""
    from bertsearch.indexer.lexical import LexicalIndex, LexicalWriter

    rng = random.Random(11)
    words = [*_WORDS, "Backups", "disks", "kernel-5.10", "src/app.py", "--dry-run", "x" * 30]

    def text() -> str:
        return " ".join(rng.choice(words[: rng.randint(4, len(words))]) for _ in range(rng.choice([1, 3, 30, 41, 90,
                                                                                              400, 3000])))

    chunks = [(i, text()) for i in range(1, 401)]
    view = LexicalIndex.rebuild_on_disk(tmp_path, 1, chunks)
    writer = LexicalWriter(view)
    removed = set(rng.sample(range(1, 401), 60))
    added = [(i, text()) for i in range(401, 461)]
    view = writer.apply(2, removed, added)
    writer.close()
    live = dict([*[c for c in chunks if c[0] not in removed], *added])
    queries = ["backup disk quota", "Kernel 5.10 upgrade", "src/app.py --dry-run", "thread", "nothing-here", "x" * 30]
    assert view._bm25_statistics(view.query_terms("backup")) is not None  # tantivy's N and avgdl were found
    for size in (1, 7, 50, 300):
        ids = np.asarray(sorted(rng.sample(sorted(live), size)))
        terms = view.subset_terms((int(i), live[int(i)]) for i in ids)
        allowed = set(ids.tolist())
        for query in queries:
            for k in (1, 5, 40):
                want = [(c, s) for c, s in view.search(query, 10_000) if c in allowed][:k]
                _same_top(view.search(query, k, subset=terms), want)
                _same_top(view.search(query, k, subset=ids), want)  # the term set, past the switch


@pytest.mark.parametrize("exact_max", [0, 1, None], ids=["term-set", "at-the-switch", "own-terms"])
def test_filtered_lexical_search_is_exact_on_both_sides_of_the_switch(
    tagged_docs: Path, tiny_bert_path: str, tmp_path: Path, monkeypatch, exact_max: int | None,
) -> None:
    import bertsearch.indexer.reading as reading
    from bertsearch.indexer.lexical import LexicalIndex

    built: list[int] = []
    subset_terms = LexicalIndex.subset_terms

    def counted(self: LexicalIndex, chunks: Any) -> Any:
        terms = subset_terms(self, chunks)
        built.append(terms.size)
        return terms

    monkeypatch.setattr(LexicalIndex, "subset_terms", counted)
    settings = Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path)
    with Index.open(settings, create=True) as index:
        index.update(tagged_docs)
        with index.transaction() as s:
            rows = s.execute(select(ChunkRow.id, Document.path, Document.meta, Document.source)
                             .join(Document, ChunkRow.document_id == Document.id)).all()
        sizes = {}
        for where in _FILTERS:
            sizes[json.dumps(where)] = sum(reference(where, {**r[2], "path": r[1], "source": r[3]}) for r in rows)
        smallest = min(n for n in sizes.values() if n)
        monkeypatch.setattr(reading, "EXACT_SUBSET_MAX", smallest if exact_max == 1 else
                            exact_max if exact_max is not None else reading.EXACT_SUBSET_MAX)
        for where in _FILTERS:
            allowed = {r[0] for r in rows if reference(where, {**r[2], "path": r[1], "source": r[3]})}
            for query in ["disk quota on the backup shard", "network latency and retry", "kernel memory"]:
                for k in (3, 8):
                    want = [(c, s) for c, s in index.search_lexical(query, 10_000) if c in allowed][:k]
                    _same_top(index.search_lexical(query, k, where=where), want)
        expected = [n for n in sizes.values() if 0 < n <= reading.EXACT_SUBSET_MAX]
        assert sorted(built) == sorted(expected)  # each filter's terms read once, only below the switch
        assert (exact_max == 0) == (not built)


def test_a_filter_on_the_searcher_reaches_both_modes_and_ask(tagged_docs: Path, tiny_bert_path: str,
                                                             tiny_qa_path: str, tmp_path: Path) -> None:
    from bertsearch.search.searcher import Searcher

    settings = Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path, qa_model_path=tiny_qa_path)
    with Index.open(settings, create=True) as index:
        index.update(tagged_docs)
    with Searcher.open(settings) as searcher:
        for mode in ("hybrid", "dense", "lexical"):
            hits = searcher.search("backup disk", top_k=20, mode=mode,
                                   where={"team": "infra", "path": {"$glob": "guides/**"}}).hits
            assert hits and all(h.path.startswith("guides/") for h in hits)
            docs = {h.document_id for h in hits}
            assert all(searcher.document(d).metadata["team"] == "infra" for d in docs)
        # the old path_glob and a where filter together: both hold
        both = searcher.search("backup disk", top_k=20, path_glob="notes/*", where={"year": {"$gte": 2023}}).hits
        assert both and all(h.path.startswith("notes/") and searcher.document(h.document_id).metadata["year"] >= 2023
                            for h in both)
        assert searcher.ask("what is the disk quota?", where={"team": "nobody"}).reason == \
            "no passage matches the where filter"
        with pytest.raises(InvalidQuery, match=r"where\.year\.\$gte"):
            searcher.search("disk", where={"year": {"$gte": [1]}})


@pytest.mark.slow
def test_bad_filters_are_422_naming_the_bad_part_over_a_real_server_and_errors_in_the_cli(
    tagged_docs: Path, tiny_bert_path: str, tiny_qa_path: str, tmp_path: Path,
) -> None:
    settings = Settings(index_dir=tmp_path / "idx", model_path=tiny_bert_path)
    with Index.open(settings, create=True) as index:
        index.update(tagged_docs)
    serving = serve(settings.index_dir, tiny_qa_path, tmp_path / "log.txt")
    url = next(serving)
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            bad = http.post("/search", json={"query": "disk", "where": {"$or": [{"team": "web"}, {"year": {"$in": 3}}]}})
            assert bad.status_code == 422 and "where.$or[1].year.$in" in bad.json()["detail"]
            bad = http.post("/ask", json={"question": "disk?", "where": {"team": {"$like": "w%"}}})
            assert bad.status_code == 422 and "where.team.$like: unknown operator" in bad.json()["detail"]
            assert http.post("/search", json={"query": "disk", "where": [1]}).status_code == 422
            good = http.post("/search", json={"query": "disk", "top_k": 20, "where": {"tags": {"$contains": "sec"}}})
            assert good.status_code == 200 and good.json()["hits"]
            from bertsearch.search import Client

            with Client(url) as client:
                hits = client.search("disk", top_k=20, where={"draft": True}).hits
                assert hits and all(client.document(h.document_id).metadata["draft"] is True for h in hits)
    finally:
        serving.close()

    runner = CliRunner()
    where = ["--index", str(settings.index_dir)]
    done = runner.invoke(cli, ["search", "disk", *where, "--mode", "lexical", "--json", "--where", '{"team": "web"}'])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["hits"]
    bad = runner.invoke(cli, ["search", "disk", *where, "--where", '{"team": {"$gt": null}}'])
    assert bad.exit_code == 1 and "Error: where.team.$gt: expects a number or a string" in bad.output
    bad = runner.invoke(cli, ["ask", "disk?", *where, "--where", "{team"])
    assert bad.exit_code == 1 and "Error: --where is not JSON" in bad.output
