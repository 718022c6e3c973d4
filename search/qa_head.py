"""Load extractive QA models (a BERT or MPNet encoder with a start/end head); training saves them
(:mod:`bertsearch.search.training.export`).

The shipped default lives in the package folder ``search/qa_model/``. To stay small it holds no
word embeddings: training keeps them frozen, so they are exactly those of the packaged
all-MiniLM-L6-v2 encoder, and loading re-attaches them from there (checked by a SHA-256 of the
tensor). The other weights are stored in bfloat16 (``model.safetensors``), next to ``config.json``,
the tokenizer files, ``bertsearch_qa.json`` (how to rebuild the model) and ``MODEL_CARD.md``.

A head trained on a named encoder (``train-qa --base-model multilingual-e5-small``) keeps the
tensors it never changed out of its folder the same way, with the tokenizer: ``bertsearch_qa.json``
names the encoder and those tensors (``base``), and loading takes them from the encoder's folder
(made on first use, :mod:`bertsearch.indexer.named_models`), checked by one SHA-256 over all of them.
A head with low-rank adapters (``train-qa --lora-rank``, ``lora`` in ``bertsearch_qa.json``) keeps
every weight matrix of the encoder there and stores its adapters: loading adds them beside the
encoder's weights and folds them in (:mod:`bertsearch.search.lora`).

A folder holding a complete Hugging Face ``...ForQuestionAnswering`` (any dtype) loads too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bertsearch.indexer.common.errors import ConfigError, ModelLoadError

QA_META_FILE = "bertsearch_qa.json"
WORD_EMBEDDINGS_KEY = "bert.embeddings.word_embeddings.weight"
PACKAGED = "packaged"


def default_qa_model_path() -> Path:
    """The folder of the QA head shipped inside the package."""
    return Path(__file__).resolve().parent / "qa_model"


def multilingual_qa_model_path() -> Path:
    """The folder of the shipped head trained on multilingual-e5-small (Chinese and English)."""
    return Path(__file__).resolve().parent / "qa_model_multilingual"


def qa_model_for(model_id: str | None) -> Path | None:
    """The shipped head an index built with the encoder ``model_id`` reads with: the multilingual
    head (with its own answer model) for an index of multilingual-e5-small, else ``None``, the
    default head."""
    from bertsearch.indexer.e5_convert import NAME
    from bertsearch.indexer.named_models import model_name

    folder = multilingual_qa_model_path()
    if model_id and model_name(model_id) == NAME and all((folder / f).is_file() for f in ("config.json", "answer_model.json")):
        return folder
    return None


def tensor_sha256(tensor: Any) -> str:
    """SHA-256 of a tensor's float32 bytes (identifies the word embeddings a head was trained with)."""
    import torch

    return hashlib.sha256(tensor.detach().to(torch.float32).contiguous().numpy().tobytes()).hexdigest()


def tensors_sha256(tensors: dict[str, Any]) -> str:
    """One SHA-256 over named tensors: each name, then its float32 bytes, in the order of the names."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(tensors[name].detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def base_folder(name: str, cache_dir: str | Path | None = None) -> Path:
    """The folder of the named encoder ``name`` a head was trained on (made on first use).

    Raises:
        ConfigError: Its package is missing (the install hint).
        ModelLoadError: The name is unknown or its source is not the pinned file.
    """
    from bertsearch.indexer.common.settings import default_cache_dir
    from bertsearch.indexer.named_models import NAMES, named_model_folder

    if name not in NAMES:
        raise ModelLoadError(f"the QA model was trained on an encoder this version does not know: {name!r}")
    return named_model_folder(name, Path(cache_dir) if cache_dir else default_cache_dir())


def base_tensors(folder: str | Path, names: list[str]) -> dict[str, Any]:
    """The tensors ``names`` (a QA model's names: ``bert.…``, ``mpnet.…``) of the encoder in
    ``folder``, which may store them without the model's prefix.

    Raises:
        ModelLoadError: The encoder lacks one of them.
    """
    from safetensors import safe_open

    out = {}
    with safe_open(str(Path(folder) / "model.safetensors"), framework="pt") as weights:
        keys = set(weights.keys())
        for name in names:
            plain = name.partition(".")[2] if name.startswith(("bert.", "mpnet.")) else name
            key = plain if plain in keys else name
            if key not in keys:
                raise ModelLoadError(f"the encoder in {folder} has no tensor {plain}")
            out[name] = weights.get_tensor(key)
    return out


def _packaged_word_embeddings() -> Any:
    from safetensors.torch import load_file

    from bertsearch.indexer.common.settings import packaged_encoder_path

    weights = load_file(str(Path(packaged_encoder_path()) / "model.safetensors"))
    for key in ("embeddings.word_embeddings.weight", WORD_EMBEDDINGS_KEY):
        if key in weights:
            return weights[key]
    raise ModelLoadError("the packaged encoder has no word embeddings to attach to the QA head")


def attention_for(config: Any, wanted: str) -> str:
    """``wanted``, or ``eager`` for an architecture without SDPA (MPNet)."""
    from transformers import AutoModelForQuestionAnswering

    if wanted != "sdpa":
        return wanted
    model_class = AutoModelForQuestionAnswering._model_mapping.get(type(config), None)
    return wanted if model_class is not None and getattr(model_class, "_supports_sdpa", False) else "eager"


def takes_token_types(model: Any) -> bool:
    """Whether the model's ``forward`` takes ``token_type_ids`` (BERT does, MPNet does not)."""
    import inspect

    return "token_type_ids" in inspect.signature(model.forward).parameters


def read_qa_meta(folder: str | Path) -> dict[str, Any]:
    """The facts a model folder exported by bertsearch holds (``bertsearch_qa.json``).

    Raises:
        ModelLoadError: The folder holds no such file.
    """
    meta_file = Path(folder) / QA_META_FILE
    if not meta_file.is_file():
        raise ModelLoadError(f"{folder} is not a model exported by bertsearch ({QA_META_FILE} missing)")
    return json.loads(meta_file.read_text(encoding="utf-8"))


def load_qa_model(path: str | Path | None = None, attn_implementation: str = "eager",
                  cache_dir: str | Path | None = None, merge: bool = True) -> tuple[Any, Any]:
    """Load a QA model and its tokenizer, in float32, in eval mode.

    Args:
        path: A folder written by :func:`save_qa_model` or a Hugging Face QA model folder;
            ``None`` for the head shipped with bertsearch.
        attn_implementation: ``"eager"`` (fastest on CPU in bf16 here) or ``"sdpa"``.
        cache_dir: Where the named encoder a head was trained on is kept (``base``; default:
            the settings' default cache folder).
        merge: Fold a head's low-rank adapters (``lora``) into the encoder's weights (``False``
            keeps them apart, to train them on).

    Returns:
        ``(model, tokenizer)``.

    Raises:
        ModelLoadError: The folder is missing or does not hold a usable QA model.
    """
    import torch
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer

    folder = Path(path) if path is not None else default_qa_model_path()
    if not (folder / "config.json").is_file():
        if path is None:
            raise ModelLoadError(
                f"the default QA model is not installed ({folder} holds no model yet); "
                "train one with `bertsearch train-qa` and pass it with --qa-model"
            )
        raise ModelLoadError(f"no QA model in {folder} (config.json missing)")
    try:
        meta_file = folder / QA_META_FILE
        if not meta_file.is_file():
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            model = AutoModelForQuestionAnswering.from_pretrained(str(folder), attn_implementation=attention_for(
                AutoConfig.from_pretrained(str(folder)), attn_implementation))
            return model.float().eval(), tokenizer
        from safetensors.torch import load_file

        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        base = meta.get("base")
        encoder = base_folder(base["model"], cache_dir) if base else folder
        tokenizer = AutoTokenizer.from_pretrained(str(encoder))
        config = AutoConfig.from_pretrained(str(folder))
        config._attn_implementation = attention_for(config, attn_implementation)
        model = AutoModelForQuestionAnswering.from_config(config)
        adapters = meta.get("lora")
        if adapters:
            from bertsearch.search.lora import add_lora

            add_lora(model, int(adapters["rank"]), float(adapters["alpha"]))
        state = {k: v.to(torch.float32) for k, v in load_file(str(folder / "model.safetensors")).items()}
        kept = base_tensors(encoder, list(base["tensors"])) if base else {}
    except ModelLoadError:
        raise
    except ConfigError as exc:  # the encoder's package is missing, or its cache cannot be written
        raise ModelLoadError(f"the QA model in {folder} needs its encoder: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - any broken file becomes one clear error
        raise ModelLoadError(f"cannot load the QA model in {folder}: {exc}") from exc
    if base:
        if tensors_sha256(kept) != base.get("sha256"):
            raise ModelLoadError(f"the QA model in {folder} was trained on other weights of {base['model']}")
        state.update({k: v.to(torch.float32) for k, v in kept.items()})
    words = meta.get("word_embeddings")
    if words:
        embeddings = _packaged_word_embeddings().to(torch.float32)
        if tensor_sha256(embeddings) != words.get("sha256"):
            raise ModelLoadError(
                f"the QA model in {folder} was trained with other word embeddings than the packaged encoder's"
            )
        state[WORD_EMBEDDINGS_KEY] = embeddings
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ModelLoadError(f"QA model in {folder} does not match its config: missing {missing}, unexpected {unexpected}")
    if adapters and merge:
        from bertsearch.search.lora import merge_lora

        merge_lora(model)
    return model.eval(), tokenizer
