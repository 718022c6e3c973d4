"""The house rules of the code: runtime apart from training, no import circles, one direction."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"indexer": "bertsearch.indexer", "search": "bertsearch.search", "cli": "bertsearch.cli"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    parts[0] = PACKAGES[parts[0]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every bertsearch module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bertsearch"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("bertsearch"))
    return found


def _graph() -> dict[str, set[str]]:
    # A package's __init__ is a facade that re-exports names on first use (and imports them for
    # type checkers only), so it is left out: `from bertsearch.indexer import store` means `store`.
    modules = {_module_name(p): p for p in _sources() if p.name != "__init__.py"}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _sources() -> list[Path]:
    return sorted(p for folder in PACKAGES for p in (ROOT / folder).rglob("*.py"))


def test_no_module_imports_one_that_imports_it_back():
    graph = _graph()
    assert {"bertsearch.indexer.index", "bertsearch.search.searcher", "bertsearch.search.training.train",
            "bertsearch.cli.main", "bertsearch.cli.api.app"} <= set(graph)
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        for nxt in graph[node]:
            if nxt in trail:
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif len(trail) < len(graph):
                visit(nxt, trail + [nxt])

    for start in graph:
        visit(start, [start])
    assert not cycles, cycles[:3]


def test_dependencies_flow_one_way():
    for folder, banned in (("indexer", ("bertsearch.search", "bertsearch.cli", "click", "fastapi")),
                           ("search", ("bertsearch.cli", "click", "fastapi"))):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [])
                for name in names:
                    assert not name.startswith(banned), f"{path.relative_to(ROOT)} imports {name}"


def test_the_runtime_never_imports_training_code():
    training = "bertsearch.search.training"
    for path in (ROOT / "search").glob("*.py"):
        assert not any(m.startswith(training) for m in _imports(path)), path.name
    # and at run time: the library, `search` and `serve`'s app, after answering a question's setup
    code = (
        "import sys\n"
        "import bertsearch.search, bertsearch.search.searcher, bertsearch.search.reader, bertsearch.search.client\n"
        "import bertsearch.cli.main, bertsearch.cli.api, bertsearch.cli.commands.search, bertsearch.cli.commands.serve\n"
        "from bertsearch.cli.api import create_app\n"
        "create_app().openapi()\n"
        "bad = sorted(m for m in sys.modules if m.startswith('bertsearch.search.training'))\n"
        "print(bad)\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_architecture_md_names_every_module():
    """A reader of ARCHITECTURE.md finds every module of the package there."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = [str(p.relative_to(ROOT)) for p in _sources()
               if p.name != "__init__.py" and p.name not in text]
    assert not missing, missing


def test_the_environment_is_read_in_settings_only():
    """One settings object: no other module reads the environment. Ray's own RAY_ADDRESS is read
    where a cluster is joined; `serve` writes its options into the environment of its workers."""
    allowed = {"indexer/common/settings.py", "indexer/distributed.py"}
    for path in _sources():
        if str(path.relative_to(ROOT)) in allowed:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        written = {id(node.value) for node in ast.walk(tree)
                   if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                assert id(node) in written, f"{path.relative_to(ROOT)}:{node.lineno} reads the environment"
