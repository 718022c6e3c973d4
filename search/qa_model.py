"""Save and load extractive QA models (a BERT encoder with a start/end head).

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

from bertsearch.indexer.errors import ModelLoadError

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

    from bertsearch.indexer.settings import packaged_encoder_path

    weights = load_file(str(Path(packaged_encoder_path()) / "model.safetensors"))
    for key in ("embeddings.word_embeddings.weight", WORD_EMBEDDINGS_KEY):
        if key in weights:
            return weights[key]
    raise ModelLoadError("the packaged encoder has no word embeddings to attach to the QA head")


def save_qa_model(
    model: Any,
    tokenizer: Any,
    out_dir: str | Path,
    *,
    drop_packaged_word_embeddings: bool = True,
    dtype: str = "bfloat16",
    card: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Export a QA model into a folder that :func:`load_qa_model` reads.

    Args:
        model: A ``BertForQuestionAnswering``.
        tokenizer: Its tokenizer (saved beside it).
        out_dir: The folder to write (created).
        drop_packaged_word_embeddings: Leave the word embeddings out when they equal the packaged
            encoder's (they are re-attached on load). If they differ they are always kept.
        dtype: ``"bfloat16"`` (small) or ``"float32"``.
        card: Text of ``MODEL_CARD.md``.
        meta: Extra facts stored in ``bertsearch_qa.json`` (data, seed, scores...).

    Returns:
        The folder.
    """
    import torch
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch_dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}[dtype]
    state = {k: v.detach().to(torch_dtype).contiguous() for k, v in model.state_dict().items()}
    word_source = None
    if drop_packaged_word_embeddings and WORD_EMBEDDINGS_KEY in state:
        ours = model.state_dict()[WORD_EMBEDDINGS_KEY]
        try:
            packaged = _packaged_word_embeddings()
        except Exception:  # noqa: BLE001 - no packaged encoder: keep the embeddings
            packaged = None
        if packaged is not None and packaged.shape == ours.shape and torch.equal(packaged.float(), ours.float()):
            del state[WORD_EMBEDDINGS_KEY]
            word_source = {"source": PACKAGED, "sha256": tensor_sha256(packaged)}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info = {"format": 1, "dtype": dtype, "word_embeddings": word_source, **(meta or {})}
    (out / QA_META_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    if card is not None:
        (out / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    return out


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
