"""``bertsearch search`` (ranked passages) and ``bertsearch ask`` (extracted answers)."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import click

from bertsearch.cli.commands._common import echo_json, index_options, large_reader_option, make_settings
from bertsearch.indexer.filters import parse_where
from bertsearch.search.retrieval import DEFAULT_MODE, MODES
from bertsearch.search.limits import MAX_TOP_K
from bertsearch.search.searcher import DEFAULT_PASSAGES, Searcher
from bertsearch.search.types import Answer, AskResult, SearchResult

_COUNT = click.IntRange(1, MAX_TOP_K)
_WHERE = click.option("--where", "where", metavar="JSON", default=None,
                      help='Only documents whose metadata this filter lets through, e.g. \'{"language": "zh"}\' '
                           'or \'{"tags": {"$contains": "ops"}}\' (Chroma\'s operators; see the README).')
_MODE = click.option("--mode", type=click.Choice(MODES), default=DEFAULT_MODE, show_default=True,
                     help="hybrid: meaning and words fused; dense: meaning; lexical: BM25 on the words.")


@click.command()
@click.argument("query")
@index_options
@click.option("-k", "--top-k", type=_COUNT, default=5, show_default=True, help="How many passages to show.")
@click.option("--path", "path_glob", metavar="GLOB", default=None, help="Only documents whose path matches GLOB.")
@_WHERE
@_MODE
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def search(query: str, index_dir, db_url, top_k: int, path_glob: str | None, where: str | None, mode: str,
           as_json: bool) -> None:
    """Show the passages that best match QUERY, best first."""
    where_filter = _json_filter(where)
    with Searcher.open(make_settings(index_dir=index_dir, db_url=db_url)) as searcher:
        result = searcher.search(query, top_k=top_k, path_glob=path_glob, mode=mode, where=where_filter)
    if as_json:
        echo_json(result.to_dict())
    else:
        _show_hits(result)


@click.command()
@click.argument("question")
@index_options
@click.option("-k", "--top-k", type=_COUNT, default=5, show_default=True, help="How many answers to show at most.")
@click.option("--passages", type=_COUNT, default=DEFAULT_PASSAGES, show_default=True, help="How many passages to read.")
@click.option("--path", "path_glob", metavar="GLOB", default=None, help="Only documents whose path matches GLOB.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
              help="Minimum confidence of an answer (estimated probability it is right).  [default: the answer "
                   "model's threshold]")
@_WHERE
@_MODE
@click.option(
    "--qa-model", "qa_model_path", type=click.Path(exists=True, file_okay=False), default=None,
    envvar="BERTSEARCH_QA_MODEL_PATH", help="QA model folder (default: the shipped head).",
)
@large_reader_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def ask(
    question: str, index_dir, db_url, top_k: int, passages: int, path_glob: str | None,
    threshold: float | None, where: str | None, mode: str, qa_model_path: str | None, large_reader: str | None,
    as_json: bool,
) -> None:
    """Answer QUESTION with spans extracted from the indexed documents."""
    where_filter = _json_filter(where)
    settings = make_settings(index_dir=index_dir, db_url=db_url, qa_model_path=qa_model_path, large_reader=large_reader)
    with Searcher.open(settings) as searcher:
        result = searcher.ask(question, top_k=top_k, passages=passages, path_glob=path_glob, threshold=threshold,
                               mode=mode, where=where_filter)
    if as_json:
        echo_json(result.to_dict())
    else:
        _show_answers(result)


def _json_filter(where: str | None) -> Any:
    """The ``--where`` JSON, checked before the index is opened."""
    if where is None:
        return None
    try:
        parsed = json.loads(where)
    except ValueError as exc:
        raise click.ClickException(f"--where is not JSON: {exc}") from None
    parse_where(parsed)
    return parsed


def _show_hits(result: SearchResult) -> None:
    if not result.hits:
        click.echo("No passages found.")
    for rank, hit in enumerate(result.hits, 1):
        found = ", ".join(f"{name} #{r}" for name, r in hit.ranks.items())
        click.echo(f"{rank}. {hit.score:.3f}  {_source(hit.path, hit.title)}  [{hit.start}:{hit.end}]  ({found})")
        click.echo(textwrap.indent(_snippet(hit.text), "   "))


def _show_answers(result: AskResult) -> None:
    if result.reason:
        click.echo(f"No answer: {result.reason}." if not result.answers else f"No sure answer: {result.reason}.")
    for rank, answer in enumerate(result.answers, 1):
        flag = "  (below the threshold)" if answer.below_threshold else ""
        click.echo(f"{rank}. {_oneline(answer.text)}{flag}")
        how = "reader" if answer.source == "reader" else "definition list, match"
        click.echo(f"   confidence {answer.confidence:.3f} ({how} {answer.reader_score:.3f})  "
                   f"{_source(answer.path, answer.title)}  [{answer.start}:{answer.end}]")
        click.echo(f"   {_in_context(answer)}")


def _source(path: str, title: str | None) -> str:
    return f"{path} ({title})" if title and title not in (path, path.rsplit("/", 1)[-1]) else path


def _oneline(text: str) -> str:
    return " ".join(text.split())


def _snippet(text: str, width: int = 100, lines: int = 3) -> str:
    return textwrap.fill(_oneline(text), width=width, max_lines=lines, placeholder=" ...")


def _in_context(answer: Answer, around: int = 60) -> str:
    """The answer in [brackets] with some of the passage on either side."""
    at, to = answer.start - answer.context_start, answer.end - answer.context_start
    before, after = answer.context[max(0, at - around):at], answer.context[to:to + around]
    return (("..." if at > around else "") + _oneline(before) + " [" + _oneline(answer.text) + "] "
            + _oneline(after) + ("..." if to + around < len(answer.context) else ""))


COMMANDS = [search, ask]
