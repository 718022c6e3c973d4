"""A real full disk: the index lives on a small tmpfs mounted in a private mount namespace.

An update that does not fit must fail with a clean ``Error:`` (no traceback), leave the last good
index readable and consistent, and a later run, once there is room, must finish the work.
Needs ``unshare -m`` and the right to mount (root, or a kernel that allows user namespaces);
skipped with the reason where that is not available.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Runs inside the namespace; argv: the tmpfs, small corpus, big corpus, model.
SCRIPT = r"""
import json, os, shutil, subprocess, sys
from pathlib import Path
disk, small, big, model = sys.argv[1:5]
idx = os.path.join(disk, "idx")
ballast = os.path.join(disk, "ballast")
with open(ballast, "wb") as fh:  # room that a user frees later
    fh.write(b"\0" * 384 * 1024)

def cli(*args):
    proc = subprocess.run([sys.executable, "-m", "bertsearch.cli", *args], capture_output=True, text=True)
    return {"rc": proc.returncode, "out": proc.stdout, "err": proc.stderr}

def info():
    res = cli("info", "--index", idx, "--json")
    return json.loads(res["out"]) if res["rc"] == 0 else res

common = ["--index", idx, "--model", model, "--chunk-tokens", "32", "--chunk-overlap", "4", "--quiet", "--json"]
steps = {"first": cli("index", small, *common)}
steps["info_before"] = info()
# the big corpus goes into the indexed folder: the update cannot fit
for p in sorted(Path(big).iterdir()):
    shutil.copy(p, small)
steps["full"] = cli("index", small, *common)
steps["info_after"] = info()
steps["search_after"] = cli("search", "alpha bravo", "--index", idx, "--json")
# make room on the disk, take the big files out of the folder, and run again
os.remove(ballast)
for p in Path(big).iterdir():
    (Path(small) / p.name).unlink()
steps["again"] = cli("index", small, *common)
steps["info_again"] = info()
print(json.dumps(steps))
"""

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november".split()


def _can_mount(probe: Path) -> str | None:
    unshare = shutil.which("unshare")
    if unshare is None:
        return "no unshare command"
    probe.mkdir()
    proc = subprocess.run([unshare, "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {probe}"],
                          capture_output=True, text=True)
    return None if proc.returncode == 0 else f"cannot mount a tmpfs here: {proc.stderr.strip()}"


def _write(folder: Path, n: int, words: int, seed: int) -> None:
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        (folder / f"doc{seed}-{i:03d}.txt").write_text(f"Document {i}. " + " ".join(rng.choice(WORDS, words)) + "\n")


@pytest.mark.slow
def test_a_full_disk_fails_cleanly_keeps_the_last_good_index_and_the_next_run_finishes(
    tmp_path: Path, tiny_bert_path: str
) -> None:
    reason = _can_mount(tmp_path / "probe")
    if reason:
        pytest.skip(reason)
    small, big, disk = tmp_path / "small", tmp_path / "big", tmp_path / "disk"
    _write(small, 5, 200, seed=0)
    _write(big, 60, 4000, seed=1)  # ~1.5 MB of text, far more than the tmpfs holds
    disk.mkdir()
    mount = f"mount -t tmpfs -o size=1m tmpfs {disk}"
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", f'{mount} && exec "$0" -c "$1" "$2" "$3" "$4" "$5"',
         sys.executable, SCRIPT, str(disk), str(small), str(big), tiny_bert_path],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    steps = json.loads(proc.stdout.strip().splitlines()[-1])

    assert steps["first"]["rc"] == 0, steps["first"]
    before = steps["info_before"]
    assert before["documents"] == 5

    full = steps["full"]
    assert full["rc"] != 0
    message = full["err"] + full["out"]
    assert "Error:" in message and "Traceback" not in message, message
    assert "space" in message.lower() or "full" in message.lower(), message

    after = steps["info_after"]
    assert isinstance(after, dict) and "documents" in after, after
    assert after["chunks"] == after["faiss_vectors"], after
    assert after["documents"] >= before["documents"]
    assert steps["search_after"]["rc"] == 0, steps["search_after"]
    assert json.loads(steps["search_after"]["out"])["hits"], steps["search_after"]

    again = steps["again"]
    assert again["rc"] == 0, again
    assert steps["info_again"]["documents"] == 5
    assert steps["info_again"]["chunks"] == before["chunks"]
