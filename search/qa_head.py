"""Load extractive QA models (a BERT encoder with a start/end head); training saves them
(:mod:`bertsearch.search.training.export`).

The shipped default lives in the package folder ``search/qa_model/``. To stay small it holds no
word embeddings: training keeps them frozen, so they are exactly those of the packaged
all-MiniLM-L6-v2 encoder, and loading re-attaches them from there (checked by a SHA-256 of the
tensor). The other weights are stored in bfloat16 (``model.safetensors``), next to ``config.json``,
the tokenizer files, ``bertsearch_qa.json`` (how to rebuild the model) and ``MODEL_CARD.md``.

A folder holding a complete Hugging Face ``BertForQuestionAnswering`` (any dtype) loads too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bertsearch.indexer.common.errors import ModelLoadError

QA_META_FILE = "bertsearch_qa.json"
WORD_EMBEDDINGS_KEY = "bert.embeddings.word_embeddings.weight"
PACKAGED = "packaged"


def default_qa_model_path() -> Path:
    """The folder of the QA head shipped inside the package."""
    return Path(__file__).resolve().parent / "qa_model"


def tensor_sha256(tensor: Any) -> str:
    """SHA-256 of a tensor's float32 bytes (identifies the word embeddings a head was trained with)."""
    import torch

    return hashlib.sha256(tensor.detach().to(torch.float32).contiguous().numpy().tobytes()).hexdigest()


def _packaged_word_embeddings() -> Any:
    from safetensors.torch import load_file

    from bertsearch.indexer.common.settings import packaged_encoder_path

    weights = load_file(str(Path(packaged_encoder_path()) / "model.safetensors"))
    for key in ("embeddings.word_embeddings.weight", WORD_EMBEDDINGS_KEY):
        if key in weights:
            return weights[key]
    raise ModelLoadError("the packaged encoder has no word embeddings to attach to the QA head")


def read_qa_meta(folder: str | Path) -> dict[str, Any]:
    """The facts a model folder exported by bertsearch holds (``bertsearch_qa.json``).

    Raises:
        ModelLoadError: The folder holds no such file.
    """
    meta_file = Path(folder) / QA_META_FILE
    if not meta_file.is_file():
        raise ModelLoadError(f"{folder} is not a model exported by bertsearch ({QA_META_FILE} missing)")
    return json.loads(meta_file.read_text(encoding="utf-8"))


def load_qa_model(path: str | Path | None = None, attn_implementation: str = "eager") -> tuple[Any, Any]:
    """Load a QA model and its tokenizer, in float32, in eval mode.

    Args:
        path: A folder written by :func:`save_qa_model` or a Hugging Face QA model folder;
            ``None`` for the head shipped with bertsearch.
        attn_implementation: ``"eager"`` (fastest on CPU in bf16 here) or ``"sdpa"``.

    Returns:
        ``(model, tokenizer)``.

    Raises:
        ModelLoadError: The folder is missing or does not hold a usable QA model.
    """
    import torch
    from transformers import AutoConfig, AutoTokenizer, BertForQuestionAnswering

    folder = Path(path) if path is not None else default_qa_model_path()
    if not (folder / "config.json").is_file():
        if path is None:
            raise ModelLoadError(
                f"the default QA model is not installed ({folder} holds no model yet); "
                "train one with `bertsearch train-qa` and pass it with --qa-model"
            )
        raise ModelLoadError(f"no QA model in {folder} (config.json missing)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        meta_file = folder / QA_META_FILE
        if not meta_file.is_file():
            model = BertForQuestionAnswering.from_pretrained(str(folder), attn_implementation=attn_implementation)
            return model.float().eval(), tokenizer
        from safetensors.torch import load_file

        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        config = AutoConfig.from_pretrained(str(folder))
        config._attn_implementation = attn_implementation
        model = BertForQuestionAnswering(config)
        state = {k: v.to(torch.float32) for k, v in load_file(str(folder / "model.safetensors")).items()}
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any broken file becomes one clear error
        raise ModelLoadError(f"cannot load the QA model in {folder}: {exc}") from exc
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
    return model.eval(), tokenizer
