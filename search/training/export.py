"""Export a trained QA head into a folder :func:`bertsearch.search.qa_head.load_qa_model` reads,
with its model card, and record evaluations in it (training side: the runtime never imports it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bertsearch.search.qa_head import (
    PACKAGED,
    QA_META_FILE,
    WORD_EMBEDDINGS_KEY,
    _packaged_word_embeddings,
    base_folder,
    base_tensors,
    read_qa_meta,
    tensor_sha256,
    tensors_sha256,
)


def machine_description() -> str:
    """One line about the machine a model was trained on (CPU model, cores, torch version, GPU if used)."""
    import os
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    line = f"{cpu}, {os.cpu_count()} cores, {platform.system()}, Python {platform.python_version()}, torch {torch.__version__}"
    if torch.cuda.is_initialized():  # the model was trained (or is being exported) on a GPU
        line += f", GPU {torch.cuda.get_device_name()}"
    return line


def render_model_card(info: dict[str, Any]) -> str:
    """``MODEL_CARD.md`` from the facts of ``bertsearch_qa.json`` (training run and evaluations)."""
    train = info.get("training", {})
    base = info.get("base")
    about = [
        "A start/end span head fine-tuned with `bertsearch train-qa` on top of the packaged",
        "all-MiniLM-L6-v2 encoder (6 layers, 384 dimensions). The word embeddings were kept frozen and",
        "are not stored here: they are re-attached from the packaged encoder on load (checked by SHA-256).",
        "The other weights are stored in bfloat16.",
    ] if not base and info.get("word_embeddings") else [
        "A start/end span head fine-tuned with `bertsearch train-qa` on top of the encoder "
        f"`{Path(str(train.get('base_model') or train.get('init_from') or '?')).name}`. All of its weights are stored here"
        + (", in bfloat16." if info.get("dtype") == "bfloat16" else "."),
    ] if not base else [
        f"A start/end span head fine-tuned with `bertsearch train-qa` on top of the named encoder `{base['model']}`",
        f"({info.get('layers', '?')} layers, {info.get('hidden', '?')} dimensions). The {len(base['tensors'])} tensors "
        "training kept fixed and left as they were",
        "(" + ", ".join(filter(None, ["the word embeddings" if train.get("freeze_word_embeddings", True) else "",
                                      f"the first {train['freeze_layers']} layers" if train.get("freeze_layers") else "",
                                      f"every weight matrix of its layers, beside which low-rank adapters of rank "
                                      f"{info['lora']['rank']} were trained and are stored here, folded in on load"
                                      if info.get("lora") else ""]))
        + ") and the tokenizer are not stored here: they load from the named encoder (made on first use),",
        "checked by one SHA-256 over them. The other weights are stored in bfloat16.",
    ]
    lines = [
        "# bertsearch extractive QA head",
        "",
        *about,
        "",
        "## Training",
        "",
        f"- Data: `{Path(str(train.get('train_path', '?'))).name}` ({_data_description(info)}), plus negatives: "
        "each question paired with",
        f"  another paragraph of its article, {train.get('negative_ratio', '?')} per question, labelled no-answer.",
    ]
    if train.get("hard_negative_ratio"):
        lines.append(
            f"- Hard negatives: {train['hard_negative_ratio']} per question, the question with its own paragraph "
            "minus the sentences holding the answer."
        )
    if train.get("perturbed_negative_ratio"):
        from bertsearch.search.training.perturb import DESCRIPTIONS, KINDS, parse_weights

        weights = parse_weights(train.get("perturbed_weights", "3,1,0,1"))
        kinds = "; ".join(f"{DESCRIPTIONS[k]} ({w:g})" for k, w in zip(KINDS, weights) if w > 0)
        lines.append(
            f"- Near-miss negatives: {train['perturbed_negative_ratio']} per question, the question changed in one "
            f"of these ways (relative weight): {kinds} (`bertsearch.search.training.perturb`), paired with its own paragraph."
        )
    if train.get("shared_norm"):
        lines.append(
            f"- Shared normalisation (weight {train['shared_norm']}): the passages one question is asked of were "
            "batched together, their spans soft-maxed over all of their context tokens beside each window's own loss "
            "(`bertsearch.search.training.shared_norm`)."
        )
    if train.get("init_from"):
        lines.append(f"- Continued from the QA model `{train['init_from']}`" + (
            ", itself trained as below." if info.get("continued_from") else "."))
    if train:
        lines += [
            f"- Steps: {train.get('steps', '?')} of {train.get('batch_size', '?')} windows "
            f"({train.get('max_seq_len', '?')} tokens max, stride {train.get('stride', '?')}); "
            f"peak lr {train.get('lr', '?')}, warmup {train.get('warmup_ratio', '?')}, linear decay, AdamW, "
            f"weight decay {train.get('weight_decay', '?')}, grad clip 1.0, seed {train.get('seed', '?')}.",
            f"- Training time: {float(train.get('trained_s', 0)) / 60:.0f} minutes"
            + (f" (time budget {train['time_budget_minutes']} minutes)" if train.get("time_budget_minutes") else "")
            + ".",
            f"- Machine: {info.get('machine', '?')}.",
            *(f"- {note}" for note in info.get("notes", [])),
            *_command_block(train),
        ]
    earlier_info = info.get("continued_from") or {}
    while earlier_info.get("training"):
        earlier = earlier_info["training"]
        lines += [
            "",
            "### The run it continued" if earlier_info is info.get("continued_from") else "### The run that one continued",
            "",
            f"- Steps: {earlier.get('steps', '?')}; training time {float(earlier.get('trained_s', 0)) / 60:.0f} minutes; "
            f"negatives {earlier.get('negative_ratio', '?')} per question; seed {earlier.get('seed', '?')}.",
            *([f"- Machine: {earlier_info['machine']}."] if earlier_info.get("machine") else []),
            *(f"- {note}" for note in earlier_info.get("notes", [])),
            *_command_block(earlier),
        ]
        earlier_info = earlier_info.get("continued_from") or {}
    evaluations = info.get("evaluation", {})
    if evaluations:
        lines += ["", "## Evaluation (`bertsearch eval-qa`, each question against its own paragraph)", ""]
        lines += ["| data | questions | EM | F1 | HasAns F1 | NoAns abstained | null threshold |", "|---|---|---|---|---|---|---|"]
        for name, sc in evaluations.items():
            lines.append(
                f"| {name} | {sc.get('total')} | {sc.get('exact')} | {sc.get('f1')} | {sc.get('HasAns_f1', '')} "
                f"| {sc.get('NoAns_abstain_rate', '')} | {sc.get('null_threshold', '')} |"
            )
        for name, sc in evaluations.items():
            sweep = sc.get("threshold_sweep")
            if not sweep or "NoAns_abstain_rate" not in sweep[0]:
                continue
            lines += [
                "",
                f"Null threshold trade-off on {name}: the head abstains when log P(no answer) - log P(best span) "
                "exceeds the threshold (`eval-qa --null-threshold`).",
                "",
                "| null threshold | F1 | HasAns F1 | NoAns abstained | all abstained |",
                "|---|---|---|---|---|",
            ]
            lines += [
                f"| {row['null_threshold']} | {row.get('f1', 0):.1f} | {row.get('HasAns_f1', 0):.1f} "
                f"| {row.get('NoAns_abstain_rate', 0):.1f} | {row.get('abstain_rate', 0):.1f} |"
                for row in sweep
            ]
    licence = info.get("licence") or "Licence of the training data: CC BY-SA 4.0; this model is derived from it."
    lines += ["", licence, ""]
    return "\n".join(lines)


def _data_description(info: dict[str, Any]) -> str:
    """What the training file held: ``info["data"]`` when the run recorded it (a mix of sources,
    with their licences, then ``info["licence"]`` says what the model derives from), else SQuAD train."""
    return info.get("data") or ("SQuAD v1.0 train, rebuilt from the SQuAD explorer pages; CC BY-SA 4.0, "
                                "Rajpurkar et al. 2016")


def _command_block(train: dict[str, Any]) -> list[str]:
    return ["- Command:", "", "```", train.get("command") or _train_command(train), "```"]


def _train_command(train: dict[str, Any]) -> str:
    parts = ["bertsearch train-qa", f"--train {train.get('train_path')}", f"--out {train.get('out_dir')}"]
    flags = {
        "epochs": "--epochs", "time_budget_minutes": "--time-budget", "batch_size": "--batch-size", "lr": "--lr",
        "warmup_ratio": "--warmup", "max_seq_len": "--max-seq-len", "stride": "--stride",
        "negative_ratio": "--negatives", "hard_negative_ratio": "--hard-negatives",
        "perturbed_negative_ratio": "--perturbed-negatives", "perturbed_weights": "--perturbed-weights",
        "init_from": "--init-from", "base_model": "--base-model", "freeze_layers": "--freeze-layers",
        "lora_rank": "--lora-rank", "shared_norm": "--shared-norm",
        "seed": "--seed", "limit": "--limit", "device": "--device",
    }
    if not train.get("perturbed_negative_ratio"):
        flags.pop("perturbed_weights")
    for key in ("freeze_layers", "lora_rank", "shared_norm"):
        if not train.get(key):
            flags.pop(key)
    parts += [f"{flag} {train[key]}" for key, flag in flags.items() if train.get(key) is not None]
    return " \\\n  ".join(parts)


def record_evaluation(folder: str | Path, name: str, scores: dict[str, Any]) -> None:
    """Store evaluation scores in a model folder's ``bertsearch_qa.json`` and refresh its model card."""
    meta_file = Path(folder) / QA_META_FILE
    info = read_qa_meta(folder)
    info.setdefault("evaluation", {})[name] = scores
    meta_file.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (Path(folder) / "MODEL_CARD.md").write_text(render_model_card(info), encoding="utf-8")


def save_qa_model(
    model: Any,
    tokenizer: Any,
    out_dir: str | Path,
    *,
    drop_packaged_word_embeddings: bool = True,
    dtype: str = "bfloat16",
    card: str | None = None,
    meta: dict[str, Any] | None = None,
    base: str | None = None,
    frozen: list[str] | tuple[str, ...] = (),
    cache_dir: str | Path | None = None,
) -> Path:
    """Export a QA model into a folder that :func:`load_qa_model` reads.

    Args:
        model: A ``BertForQuestionAnswering`` or ``MPNetForQuestionAnswering`` (adapters too).
        tokenizer: Its tokenizer (saved beside it).
        out_dir: The folder to write (created).
        drop_packaged_word_embeddings: Leave the word embeddings out when they equal the packaged
            encoder's (they are re-attached on load). If they differ they are always kept.
        dtype: ``"bfloat16"`` (small) or ``"float32"``.
        card: Text of ``MODEL_CARD.md`` (default: rendered from ``meta``).
        meta: Extra facts stored in ``bertsearch_qa.json`` (data, seed, scores...).
        base: The named encoder the model was trained on (``multilingual-e5-small``, ``all-mpnet-base-v2``): the tensors
            of ``frozen`` that still equal its are left out, with the tokenizer, and taken from
            it on load.
        frozen: The tensors training kept fixed.
        cache_dir: Where the named encoder is kept.

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
    base_source = None
    if base is not None:
        kept = base_tensors(base_folder(base, cache_dir), list(frozen))
        ours = model.state_dict()
        same = {k: v for k, v in kept.items() if torch.equal(v.float(), ours[k].detach().float().cpu())}
        for key in same:
            del state[key]
        base_source = {"model": base, "tensors": sorted(same), "sha256": tensors_sha256(same)}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(out)
    if base is None:
        tokenizer.save_pretrained(out)
    info = {"format": 1, "dtype": dtype, "word_embeddings": word_source, "machine": machine_description(), **(meta or {})}
    if base_source is not None:
        info.update(base=base_source, layers=model.config.num_hidden_layers, hidden=model.config.hidden_size)
    (out / QA_META_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (out / "MODEL_CARD.md").write_text(card if card is not None else render_model_card(info), encoding="utf-8")
    return out
