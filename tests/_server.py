"""Run a real `bertsearch serve` process for the tests that talk to one over loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bertsearch.search import Client, ClientError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bertsearch_command() -> list[str]:
    script = Path(sys.executable).with_name("bertsearch")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bertsearch.cli"]


def serve(index_dir: Path, qa_model: str | None, log: Path, *args: str,
          env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `bertsearch serve` (with ``args`` and ``env`` added; ``qa_model`` None: the shipped
    head) until the generator is closed; yields its base URL once it answers."""
    port = free_port()
    command = bertsearch_command() + [
        "serve", "--index", str(index_dir), "--port", str(port), "--log-level", "warning",
        *(["--qa-model", qa_model] if qa_model else []), *args,
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        with Client(url, timeout=5.0) as client:
            deadline = time.monotonic() + 120.0
            while True:
                if process.poll() is not None:
                    pytest.fail(f"bertsearch serve exited with {process.returncode}:\n{log.read_text()}")
                try:
                    client.health()
                    break
                except ClientError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"bertsearch serve did not answer within 120 s:\n{log.read_text()}")
                    time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
