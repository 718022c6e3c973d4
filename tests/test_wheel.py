"""The built wheel carries the shipped QA head, and it answers with the network unavailable.

The wheel is built from a copy of the source tree and installed into a fresh virtual environment
that sees the test environment's dependencies (torch, transformers, the packaged encoder) through a
path entry, but not the editable install of this checkout. The reading runs in a new network
namespace where the kernel allows it (``unshare -n``) and always with sockets that refuse to
connect, so any attempt to download fails loudly.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                              "results", "work", ".bertsearch")

PROBE = r"""
import json, os, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network disabled by the test")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

from bertsearch.search.qa_head import default_qa_model_path
from bertsearch.search.reader import Reader

context = "The Eiffel Tower in Paris was finished in 1889. Gustave Eiffel's company built it."
spans = Reader(precision="fp32").read("When was the Eiffel Tower finished?", [context])
print(json.dumps({"model_dir": str(default_qa_model_path()), "answer": spans[0].text if spans else None,
                  "attempts": attempts}))
"""


def _network_isolated() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(python of a fresh venv with the wheel installed, the wheel)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(tmp / "dist"), str(src)],
        capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr
    wheel = next((tmp / "dist").glob("bertsearch-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", purelib, str(wheel)],
        capture_output=True, text=True,
    )
    assert install.returncode == 0, install.stderr
    # The dependencies come from this environment; a plain path entry runs none of its .pth files,
    # so the editable install of this checkout stays out of sight.
    (Path(purelib) / "test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n", encoding="utf-8")
    return python, wheel


@pytest.mark.slow
def test_the_wheel_holds_the_shipped_head_and_only_the_bertsearch_name(installed: tuple[Path, Path]) -> None:
    _, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert {"bertsearch/search/qa_model/model.safetensors", "bertsearch/search/qa_model/config.json",
            "bertsearch/search/qa_model/MODEL_CARD.md"} <= set(names)
    assert {f"bertsearch/search/qa_model_multilingual/{f}" for f in
            ("model.safetensors", "config.json", "bertsearch_qa.json", "answer_model.json")} <= set(names)
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"bertsearch"}
    assert any(n.startswith("bertsearch/migrations/versions/") for n in names)


@pytest.mark.slow
def test_the_installed_head_answers_offline(installed: tuple[Path, Path], tmp_path: Path) -> None:
    python, _ = installed
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "TRANSFORMERS_", "BERTSEARCH_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HOME"] = str(tmp_path)  # an empty model cache: nothing may come from ~/.cache/huggingface
    proc = subprocess.run([*_network_isolated(), str(python), "-c", PROBE], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(result["model_dir"]).is_relative_to(python.parent.parent), result["model_dir"]
    assert result["attempts"] == []
    assert result["answer"] is not None and "1889" in result["answer"]
