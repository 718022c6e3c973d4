"""The encoder: a BERT model from a local folder, mask-aware mean pooling, L2-normalised.

Speed on a CPU comes from a few things, each measured on the packaged all-MiniLM-L6-v2
(``benchmarks/encode.py``): PyTorch's fused attention (``sdpa``: 1.5x ``eager`` in fp32, 1.9x in
bf16), bf16 autocast on CPUs with native bf16 instructions (AVX512-BF16 or AMX: 2.3x fp32),
with the linear layers' weights stored in bf16 (autocast would cast them on every call; 1.2x),
no [CLS] pooler, and batches of texts of similar length (little padding). Layer norms, residual
sums and pooling stay in fp32, so vectors match fp32 ones to a cosine above 0.9999.

Some models are trained to read a prefix before each text: E5 reads ``query: `` before a query
and ``passage: `` before a passage. A folder says so as sentence-transformers does, in
``config_sentence_transformers.json`` (``prompts``: ``query``, and ``passage`` or ``document``);
:meth:`Encoder.encode` puts the passage prefix before each text, or with ``query=True`` the query
prefix. A folder that says none (the packaged MiniLM) encodes the texts as they are.

On CPUs without native bf16, ``int8`` runs the model in ONNX Runtime with int8 weights
(:mod:`bertsearch.indexer.int8`): vectors close to fp32 ones (cosine 0.994 on average), and
faster than fp32 wherever it was measured (``benchmarks/encode.py``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from bertsearch.indexer.common.precision import cpu_has_native_bf16, resolve
from bertsearch.indexer.common.errors import ConfigError, ModelLoadError
from bertsearch.indexer.common import torch_thread
from bertsearch.indexer.common.progress import progress_bar
from bertsearch.indexer.common.settings import DEFAULT_BATCH_SIZE, default_cache_dir


__all__ = ["Encoder", "cpu_has_native_bf16"]

_MAX_LENGTH_CAP = 512
_FINGERPRINT_BYTES = 1 << 20
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


class Encoder:
    """Turns texts into L2-normalised mean-pooled vectors with a BERT model from a local folder.

    Args:
        model_path: Folder holding the model (``config.json``, weights) and a fast tokenizer.
            Nothing is downloaded.
        precision: ``"bf16"`` (autocast), ``"fp32"``, ``"int8"`` (ONNX Runtime), or ``"auto"``:
            bf16 where the CPU has native bf16 instructions, else int8 when ONNX Runtime is
            installed, else fp32.
        batch_size: Texts per forward pass.
        max_length: Tokens per text, special tokens included; longer texts are truncated.
            Default: ``max_seq_length`` of ``sentence_bert_config.json`` when the folder has
            one, else the model's maximum positions, at most 512.
        cache_dir: Where the int8 model is cached (default: ``settings.default_cache_dir()``).

    Raises:
        ModelLoadError: The folder is missing or holds no usable model and fast tokenizer.
        ConfigError: ``precision``, ``batch_size`` or ``max_length`` is invalid, or int8 was
            asked for without ONNX Runtime.
    """

    pooling = "mean"

    def __init__(
        self,
        model_path: str,
        *,
        precision: str = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_length: int | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self._precision = resolve(precision)  # raises ConfigError for another value
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        self._path = Path(model_path)
        if not self._path.is_dir():
            raise ModelLoadError(f"encoder model folder not found: {model_path}")
        if not (self._path / "config.json").is_file():
            raise ModelLoadError(f"not a model folder (no config.json): {model_path}")

        import torch

        self._torch = torch
        self._tokenizer = _load_tokenizer(self._path)  # the PyTorch thread's alone
        # Each call of a fast tokenizer sets its backend's truncation and padding: a chunking call
        # on another thread while the PyTorch thread encodes fails ("Already borrowed") or cuts
        # the document at max_length tokens. So chunking gets a copy, never truncating or padding.
        self._chunk_tokenizer = copy.deepcopy(self._tokenizer)
        self._chunk_tokenizer.backend_tokenizer.no_truncation()
        self._chunk_tokenizer.backend_tokenizer.no_padding()
        self._batch_size = batch_size
        self._int8: Any = None
        torch_thread.run(self._load, cache_dir)  # PyTorch's threads: see torch_thread
        positions = int(getattr(self._config, "max_position_embeddings", _MAX_LENGTH_CAP))
        if max_length is None:
            max_length = min(_sentence_bert_max_length(self._path) or _MAX_LENGTH_CAP, positions)
        if not 2 < max_length <= positions:
            raise ConfigError(f"max_length must be between 3 and {positions} for this model, got {max_length}")
        self._max_length = int(max_length)
        self._prefixes = _prompts(self._path)

    def _load(self, cache_dir: str | Path | None) -> None:
        torch = self._torch
        threads = _limit_threads(torch)
        if self._precision == "int8":
            from bertsearch.indexer import int8

            self._config = _load_config(self._path)
            names = list(self._tokenizer.model_input_names)
            onnx = int8.cached_model(self._path, self.model_id, Path(cache_dir or default_cache_dir()), "encoder",
                                     lambda: _load_model(self._path, "eager"), names, ["last_hidden_state"])
            self._int8 = int8.Int8Session(onnx, threads)
        else:
            self._model = _load_model(self._path, "sdpa")
            self._config = self._model.config
        if self._precision == "bf16":
            # What autocast would cast on every call, cast once: the same numbers, no copies.
            for module in self._model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.to(torch.bfloat16)

    @property
    def dimension(self) -> int:
        """Length of the vectors."""
        return int(self._config.hidden_size)

    @property
    def precision(self) -> str:
        """The precision in use, ``"bf16"``, ``"fp32"`` or ``"int8"`` (``"auto"`` resolved)."""
        return self._precision

    @property
    def max_length(self) -> int:
        """Tokens per text, special tokens included."""
        return self._max_length

    @property
    def query_prefix(self) -> str:
        """What is put before each query (``"query: "`` for E5; ``""``: nothing)."""
        return self._prefixes[0]

    @property
    def passage_prefix(self) -> str:
        """What is put before each chunk or other passage (``"passage: "`` for E5; ``""``: nothing)."""
        return self._prefixes[1]

    @property
    def batch_size(self) -> int:
        """Texts per forward pass."""
        return self._batch_size

    @property
    def tokenizer(self) -> Any:
        """The model's fast tokenizer, for chunking (any thread; not the one :meth:`encode` uses)."""
        return self._chunk_tokenizer

    @property
    def attention(self) -> str:
        """The attention implementation in use (``"sdpa"``, ``"eager"``, or ``"onnx"`` for int8)."""
        if self._int8 is not None:
            return "onnx"
        return str(getattr(self._config, "_attn_implementation", "eager"))

    @cached_property
    def model_id(self) -> str:
        """A stable fingerprint of the model: ``<name>@<12 hex digits>``.

        The name is ``_name_or_path`` of ``config.json`` (else its ``model_type``; never the
        folder, which differs between machines). The digest covers ``config.json``, the
        vocabulary and, for each weights file, its size and first and last MiB. Cheap to
        compute, the same on every machine, different for a different model.
        """
        return fingerprint(self._path)

    def encode(self, texts: Sequence[str], *, normalize: bool = True, show_progress: bool = False,
               query: bool = False) -> np.ndarray:
        """Encode texts into vectors.

        Args:
            texts: The texts, any lengths (truncated to :attr:`max_length` tokens).
            normalize: L2-normalise each vector (cosine similarity = inner product).
            show_progress: Show a tqdm bar of chunks encoded.
            query: The texts are queries: put :attr:`query_prefix` before each, not
                :attr:`passage_prefix`.

        Returns:
            ``float32`` array of shape ``(len(texts), dimension)``, in the order of ``texts``.
        """
        return torch_thread.run(self._encode, self._prefixed(texts, query), normalize, show_progress)

    def _prefixed(self, texts: Sequence[str], query: bool) -> Sequence[str]:
        prefix = self._prefixes[0] if query else self._prefixes[1]
        return [prefix + text for text in texts] if prefix else texts

    def _encode(self, texts: Sequence[str], normalize: bool, show_progress: bool) -> np.ndarray:
        torch = self._torch
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not len(texts):
            return out
        # Longest first: batches of similar lengths pad little, and memory peaks at once.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        bar = progress_bar(show_progress, "encoding", "chunk", total=len(texts))
        try:
            # Autocast feeds the (bf16) linear layers bf16 inputs and keeps layer norms in fp32.
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._precision == "bf16"):
                for first in range(0, len(order), self._batch_size):
                    batch = order[first : first + self._batch_size]
                    vectors = self._encode_batch([texts[i] for i in batch])
                    if normalize:
                        vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
                    out[batch] = vectors.numpy()
                    bar.update(len(batch))
        finally:
            bar.close()
        return out

    def count_tokens(self, texts: Sequence[str], *, query: bool = False) -> int:
        """How many tokens :meth:`encode` reads for ``texts`` (prefix and special tokens included, after truncation)."""
        if not len(texts):
            return 0
        return torch_thread.run(self._count_tokens, self._prefixed(texts, query))

    def _count_tokens(self, texts: Sequence[str]) -> int:
        ids = self._tokenizer(list(texts), truncation=True, max_length=self._max_length)["input_ids"]
        return int(sum(len(i) for i in ids))

    def _encode_batch(self, texts: list[str]) -> Any:
        """Mean of the last hidden states over real tokens, in fp32 (called inside autocast)."""
        torch = self._torch
        inputs = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self._max_length, return_tensors="pt"
        )
        if self._int8 is not None:
            hidden = torch.from_numpy(self._int8(inputs)[0])
        else:
            hidden = self._model(**inputs).last_hidden_state
        with torch.autocast("cpu", enabled=False):
            mask = inputs["attention_mask"].unsqueeze(-1).to(torch.float32)
            summed = (hidden.to(torch.float32) * mask).sum(dim=1)
            return summed / mask.sum(dim=1).clamp(min=1e-9)


def _load_tokenizer(path: Path) -> Any:
    """The model's fast tokenizer."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError... for bad folders
        raise ModelLoadError(f"cannot load the tokenizer from {path}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{path} has no fast tokenizer (tokenizer.json), needed for chunk offsets")
    return tokenizer


def _load_config(path: Path) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path, local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(f"cannot load the encoder model from {path}: {exc}") from exc


def _load_model(path: Path, attention: str) -> Any:
    """The model in eval mode, with ``attention`` (``sdpa`` falls back to ``eager`` where unsupported)."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights were not used" (pooler, heads) is expected
    try:
        try:
            model = AutoModel.from_pretrained(path, local_files_only=True, attn_implementation=attention)
        except ValueError:  # an architecture without sdpa support
            model = AutoModel.from_pretrained(path, local_files_only=True, attn_implementation="eager")
    except Exception as exc:
        raise ModelLoadError(f"cannot load the encoder model from {path}: {exc}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    if getattr(model, "pooler", None) is not None:
        model.pooler = None  # BERT's [CLS] pooler (dense + tanh): unused by mean pooling, skipped
    return model.eval()


def _limit_threads(torch: Any) -> int:
    """Use no more threads than the CPUs this process may run on (containers, taskset); returns them."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    if torch.get_num_threads() > available:
        torch.set_num_threads(available)
    return min(available, torch.get_num_threads())


def _prompts(path: Path) -> tuple[str, str]:
    """The query and passage prefixes of the folder's ``config_sentence_transformers.json`` (none without one)."""
    try:
        prompts = json.loads((path / "config_sentence_transformers.json").read_text("utf-8")).get("prompts") or {}
        query, passage = prompts.get("query") or "", prompts.get("passage") or prompts.get("document") or ""
    except (OSError, ValueError, AttributeError) as exc:
        if isinstance(exc, FileNotFoundError):
            return "", ""
        raise ModelLoadError(f"cannot read the prompts of {path / 'config_sentence_transformers.json'}: {exc}") from exc
    if not isinstance(query, str) or not isinstance(passage, str):
        raise ModelLoadError(f"the prompts of {path / 'config_sentence_transformers.json'} are not texts")
    return query, passage


def _sentence_bert_max_length(path: Path) -> int | None:
    try:
        value = json.loads((path / "sentence_bert_config.json").read_text("utf-8")).get("max_seq_length")
    except (OSError, ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int) and value > 0 else None


def fingerprint(path: Path) -> str:
    """A stable id of the model in ``path``: see :attr:`Encoder.model_id`."""
    config_bytes = (path / "config.json").read_bytes()
    try:
        config = json.loads(config_bytes)
        name = str(config.get("_name_or_path") or config.get("model_type") or "model")
    except (ValueError, AttributeError):
        name = "model"
    digest = hashlib.sha256(b"config.json\0" + config_bytes)
    for vocab in ("vocab.txt", "tokenizer.json"):
        if (path / vocab).is_file():
            digest.update(vocab.encode() + b"\0" + (path / vocab).read_bytes())
            break
    for weights in sorted(p for p in path.iterdir() if p.suffix in _WEIGHT_SUFFIXES and p.is_file()):
        size = weights.stat().st_size
        digest.update(f"{weights.name}\0{size}\0".encode())
        with open(weights, "rb") as f:
            digest.update(f.read(_FINGERPRINT_BYTES))
            f.seek(max(0, size - _FINGERPRINT_BYTES))
            digest.update(f.read(_FINGERPRINT_BYTES))
    return f"{name}@{digest.hexdigest()[:12]}"
