"""Fine-tune an extractive QA head (BERT, or MPNet) on SQuAD-format data (``bertsearch train-qa``).

Built for CPUs: bf16 autocast where the CPU supports it, eager attention, frozen word embeddings
(fewer gradients, and the exported model need not ship them), dynamic padding with batches of
similar length. AdamW, linear warmup then linear decay, gradient clipping, a fixed seed. On a
CUDA GPU (``device="cuda"``, or ``"auto"`` when one is present) it trains there instead, with
bf16 autocast, SDPA attention (where the architecture has it) and fused AdamW; the export and the
evaluation run on the CPU.
Negatives (a question paired with another paragraph of its article, labelled at ``[CLS]``)
teach the head to abstain.

A run keeps its state in ``run_dir``: ``checkpoint.pt`` (model, optimizer, step, training time,
RNG states), written atomically every ``checkpoint_minutes``, and ``train.log``. ``resume=True``
continues from the checkpoint: the batch order is a function of the seed and the epoch, so the
run goes on exactly where it stopped. At the end the model is exported to ``out_dir``
(:func:`~bertsearch.search.training.export.save_qa_model`) and, when ``eval_path`` is given, evaluated.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bertsearch.indexer.common.errors import ConfigError, ModelLoadError
from bertsearch.indexer.files import atomic_write

CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "train.log"
# Fields that must not change between a run and its resumption.
_RESUME_KEYS = (
    "train_path", "base_model", "limit", "epochs", "batch_size", "lr", "warmup_ratio", "weight_decay",
    "max_seq_len", "stride", "negative_ratio", "seed", "freeze_word_embeddings", "time_budget_minutes",
    "hard_negative_ratio", "init_from", "perturbed_negative_ratio", "perturbed_weights", "freeze_layers",
    "shared_norm", "lora_rank",
)


@dataclass
class TrainConfig:
    """Everything a training run depends on.

    Attributes:
        train_path: SQuAD-format training file (``.json`` or ``.json.gz``).
        out_dir: Where the exported model is written at the end.
        run_dir: Checkpoints and the log (default: ``<out_dir>.run``).
        base_model: Encoder folder to start from (default: the packaged all-MiniLM-L6-v2), or a
            named one (``multilingual-e5-small``, ``all-mpnet-base-v2``): its export then leaves out
            the tensors it kept fixed and the tokenizer, which load from the named encoder.
        eval_path: SQuAD-format file evaluated at the end (optional).
        eval_limit: Questions of ``eval_path`` evaluated (``None``: all).
        limit: Use only the first ``limit`` training questions.
        epochs: Passes over the data (fractions allowed).
        batch_size: Windows per step.
        lr: Peak learning rate.
        warmup_ratio: Share of the steps with linearly rising learning rate.
        weight_decay: AdamW weight decay (not on biases and LayerNorm).
        max_seq_len: Tokens per window.
        stride: Tokens shared by consecutive windows of one context.
        negative_ratio: Negatives per answerable question (another paragraph of the article).
        hard_negative_ratio: Hard negatives per answerable question (its own paragraph without
            the answer's sentences), closer to SQuAD 2.0's unanswerable questions.
        perturbed_negative_ratio: Near-miss negatives per answerable question (its question with
            an entity or word swapped, an antonym, a negation, a role swap, an ordinal, a reword or
            an exchange; see :mod:`bertsearch.search.training.perturb`), like most of SQuAD 2.0's
            unanswerable questions.
        perturbed_weights: Relative frequency of the near-miss kinds,
            ``"swap,antonym,word,negate,role,ordinal,reword,exchange"`` (missing ones 0).
        init_from: Start from this exported QA model (continue training) instead of ``base_model``.
        shared_norm: Weight of the shared-normalisation loss added to the per-window one (0: none):
            the passages one question is asked of are batched together and their spans compete
            in one softmax (:mod:`bertsearch.search.training.shared_norm`).
        seed: Seed of everything random.
        freeze_word_embeddings: Keep the word embeddings fixed (and leave them out of the export).
        freeze_layers: Keep the encoder's first ``freeze_layers`` layers fixed too (faster steps,
            and with a named base a smaller export).
        lora_rank: Keep every weight matrix of the encoder fixed and train low-rank adapters of
            this rank beside them (:mod:`bertsearch.search.lora`), with the biases, LayerNorms and
            the span head (0: train the weights themselves). Made for a large named base
            (``all-mpnet-base-v2``): the export holds a few MB, not the encoder.
        cache_dir: Where a named base encoder is kept (the entry point passes ``Settings.cache_dir``).
        precision: ``auto`` (bf16 autocast when the device supports it), ``bf16`` or ``fp32``.
        device: ``auto`` (a CUDA GPU when one is present, else the CPU), ``cpu`` or ``cuda``
            (``cuda:N`` too). A run may be resumed on another device.
        threads: Torch threads (default: all cores).
        checkpoint_minutes: Minutes between checkpoints.
        log_every: Steps between log lines.
        max_steps: Stop after this many steps (a short test run); the schedule is unchanged.
        time_budget_minutes: Fit the run into this many minutes of training: the learning rate
            follows whichever is further along, steps or training time, and the run ends when
            either is used up (on a shared CPU this finishes on time, seeing less data if slow).
    """

    train_path: str
    out_dir: str
    run_dir: str | None = None
    base_model: str | None = None
    eval_path: str | None = None
    eval_limit: int | None = 2000
    limit: int | None = None
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 1.5e-4
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_seq_len: int = 256
    stride: int = 96
    negative_ratio: float = 0.25
    hard_negative_ratio: float = 0.0
    perturbed_negative_ratio: float = 0.0
    perturbed_weights: str = "3,1,0,1"
    init_from: str | None = None
    shared_norm: float = 0.0
    seed: int = 0
    freeze_word_embeddings: bool = True
    freeze_layers: int = 0
    lora_rank: int = 0
    cache_dir: str | None = None
    precision: str = "auto"
    device: str = "auto"
    threads: int | None = None
    checkpoint_minutes: float = 10.0
    log_every: int = 20
    max_steps: int | None = None
    time_budget_minutes: float | None = None

    def resolved_run_dir(self) -> Path:
        """The folder of checkpoints and the log."""
        return Path(self.run_dir) if self.run_dir else Path(str(self.out_dir).rstrip("/") + ".run")


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The batches of one epoch: shuffled, grouped by length within pools of 50 batches.

    Deterministic in ``(seed, epoch)``, which is what makes ``--resume`` exact.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    pool = batch_size * 50
    batches: list[np.ndarray] = []
    for lo in range(0, len(order), pool):
        part = order[lo : lo + pool]
        part = part[np.argsort(-lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def collate(features: Any, index: np.ndarray, multiple: int = 8) -> dict[str, Any]:
    """Pad the windows ``index`` to the longest of them (rounded up to ``multiple``).

    ``token_type_ids`` (1 on the context side) is always there, for the shared normalisation;
    :func:`model_inputs` leaves it out for an encoder that takes none (MPNet)."""
    import torch

    from bertsearch.search.windows import pad_windows

    ids, types, mask = pad_windows(features.input_ids, features.token_type_ids, index, multiple)
    return {
        "input_ids": torch.from_numpy(ids),
        "token_type_ids": torch.from_numpy(types),
        "attention_mask": torch.from_numpy(mask),
        "start_positions": torch.from_numpy(features.start_positions[index]),
        "end_positions": torch.from_numpy(features.end_positions[index]),
    }


def model_inputs(batch: dict[str, Any], token_types: bool) -> dict[str, Any]:
    """The batch as the model takes it."""
    return batch if token_types else {k: v for k, v in batch.items() if k != "token_type_ids"}


def lr_factor(progress: float, warmup: float) -> float:
    """Linear warmup over the first ``warmup`` share of the run, then linear decay to zero."""
    if progress < warmup:
        return max(progress / warmup, 0.01)
    return max(0.0, (1.0 - progress) / max(1e-9, 1.0 - warmup))


class _ThreadTuner:
    """Picks the torch thread count that trains fastest right now (the CPU is shared).

    Mostly runs the best-known count; every ``period`` steps it tries the other for ``trial``
    steps. Cost is measured in seconds per token, averaged exponentially. A trial measures afresh,
    its first step left out (the new thread pool's start): a count that was slow while another job
    shared the CPU (two threads wait on each other when one is descheduled) must not stay
    condemned after that job ends (a run stayed on one thread, at half speed, for ten minutes).
    """

    def __init__(self, choices: list[int], period: int = 60, trial: int = 8) -> None:
        if not 1 < trial < period:  # a trial's first step is not measured
            raise ValueError(f"a trial of {trial} steps every {period} measures nothing")
        self.choices = choices
        self.cost: dict[int, float | None] = {c: None for c in choices}
        self.period, self.trial = period, trial
        self.steps = 0
        self.current = choices[-1]
        self._skip = False
        self._trying: int | None = None

    def choose(self) -> int:
        import torch

        known = {c: v for c, v in self.cost.items() if v is not None}
        untried = [c for c in self.choices if c not in known]
        best = min(known, key=known.__getitem__) if known else self.choices[-1]
        want = best
        phase = self.steps % self.period
        if len(self.choices) > 1 and phase == self.period - self.trial:  # a trial starts
            self._trying = untried[0] if untried else next(c for c in self.choices if c != best)
            self.cost[self._trying] = None
        elif phase < self.period - self.trial:
            self._trying = None
        if self._trying is not None:
            want = self._trying
        if want != self.current:
            torch.set_num_threads(want)
            self.current = want
            self._skip = True
        self.steps += 1
        return want

    def record(self, seconds: float, tokens: int) -> None:
        if self._skip:
            self._skip = False
            return
        value = seconds / max(tokens, 1)
        old = self.cost[self.current]
        self.cost[self.current] = value if old is None else 0.85 * old + 0.15 * value


class _Log:
    def __init__(self, path: Path, echo: Callable[[str], None] | None) -> None:
        self.path = path
        self.echo = echo

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}Z {message}"
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        if self.echo is not None:
            self.echo(line)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    for leftover in path.parent.glob(f".{path.name}.*.tmp"):  # from a run killed while saving (one writer per run)
        leftover.unlink(missing_ok=True)
    with atomic_write(path) as fh:
        torch.save(obj, fh)


def _rng_state() -> dict[str, Any]:
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_device(name: str) -> Any:
    """The ``torch.device`` for a ``device`` setting of ``auto``, ``cpu`` or ``cuda[:N]``.

    Raises:
        ConfigError: Another value, or CUDA asked for where there is none.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device must be auto, cpu or cuda, not {name!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, not {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but torch sees no CUDA GPU here")
    return device


def _named_base(config: TrainConfig) -> str | None:
    """The named encoder the run trains on: ``--base-model`` when it is a name (not a folder), else
    the one the ``--init-from`` head was trained on (its tokenizer and fixed tensors come from it).

    Raises:
        ConfigError: The two disagree.
    """
    from bertsearch.indexer.named_models import as_name
    from bertsearch.search.qa_head import read_qa_meta

    named = as_name(config.base_model) if config.base_model else None
    if config.init_from:
        try:
            of_head = (read_qa_meta(config.init_from).get("base") or {}).get("model")
        except ModelLoadError:
            of_head = None  # a Hugging Face QA model folder: it records no named encoder
        if of_head and config.base_model and named != of_head:
            raise ConfigError(f"--init-from was trained on {of_head}: pass --base-model {of_head} or none")
        named = named or of_head
    return named


def train_qa(config: TrainConfig, resume: bool = False, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run (or resume) a training run, export the model and evaluate it.

    Args:
        config: The run's settings.
        resume: Continue from ``run_dir/checkpoint.pt``.
        echo: Called with every log line (e.g. to print it); the log file is always written.

    Returns:
        A summary: steps, wall time, final loss, export folder and evaluation scores.

    Raises:
        ConfigError: Bad settings, missing data, or a checkpoint from another configuration.
    """
    import torch
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoTokenizer

    from bertsearch.indexer.common.settings import packaged_encoder_path
    from bertsearch.search.lora import add_lora, lora_settings
    from bertsearch.search.qa_head import attention_for, base_folder, takes_token_types
    from bertsearch.indexer.common.precision import use_bf16 as use_bf16_autocast
    from bertsearch.search.training.perturb import add_perturbed_negatives, parse_weights
    from bertsearch.search.training.squad import add_hard_negatives, add_negatives, load_squad, make_train_features

    device = resolve_device(config.device)
    on_gpu = device.type == "cuda"
    run_dir = config.resolved_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    log = _Log(run_dir / LOG_FILE, echo)
    ckpt_path = run_dir / CHECKPOINT_FILE
    checkpoint = None
    if resume:
        if not ckpt_path.is_file():
            raise ConfigError(f"nothing to resume: no {ckpt_path}")
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        saved = checkpoint["config"]
        defaults = TrainConfig(train_path="", out_dir="")
        changed = [k for k in _RESUME_KEYS if saved.get(k, getattr(defaults, k)) != getattr(config, k)]
        if changed:
            raise ConfigError(f"cannot resume: the checkpoint was made with other {', '.join(changed)}")

    cores = os.cpu_count() or 1
    # On a GPU the CPU only pads batches: no thread tuning (one fixed count).
    tuner = _ThreadTuner([config.threads] if config.threads else [min(cores, 4)] if on_gpu else sorted({1, cores}))
    torch.set_num_threads(tuner.current)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    use_bf16 = use_bf16_autocast(config.precision, device.type)
    # Eager attention is fastest on a CPU in bf16; on a GPU SDPA's fused kernels are.
    attention = "sdpa" if on_gpu else "eager"
    cache_dir = config.cache_dir
    named = _named_base(config)
    base = str(base_folder(named, cache_dir)) if named else config.base_model or packaged_encoder_path()
    layers = AutoConfig.from_pretrained(base).num_hidden_layers
    if not 0 <= config.freeze_layers <= layers:
        raise ConfigError(f"--freeze-layers must be 0-{layers} (the encoder's layers), not {config.freeze_layers}")
    if config.lora_rank < 0:
        raise ConfigError(f"--lora-rank must be 0 (none) or more, not {config.lora_rank}")
    if config.lora_rank and config.freeze_layers:
        raise ConfigError("--lora-rank keeps every weight matrix fixed already: leave out --freeze-layers")

    log(f"{'resume' if resume else 'start'}: {json.dumps(asdict(config))}")
    t0 = time.time()
    # A head continued from its own folder (trained on an encoder folder, not a name) has its tokenizer there.
    tokenizer = AutoTokenizer.from_pretrained(config.init_from if config.init_from and not named
                                              and not config.base_model else base)
    examples = load_squad(config.train_path, limit=config.limit)
    if config.negative_ratio > 0:
        examples = add_negatives(examples, config.negative_ratio, seed=config.seed)
    if config.hard_negative_ratio > 0:
        examples = add_hard_negatives(examples, config.hard_negative_ratio, seed=config.seed)
    if config.perturbed_negative_ratio > 0:
        examples = add_perturbed_negatives(examples, config.perturbed_negative_ratio, seed=config.seed,
                                           weights=parse_weights(config.perturbed_weights))
    features = make_train_features(examples, tokenizer, config.max_seq_len, config.stride)
    n_questions = len(examples)
    del examples
    if len(features) == 0:
        raise ConfigError(f"no training examples in {config.train_path}")
    lengths = np.asarray([len(x) for x in features.input_ids])
    no_answer = float(np.mean(features.start_positions == 0))
    log(
        f"data: {n_questions} questions (negatives included), {len(features)} windows, "
        f"mean length {lengths.mean():.1f}, no-answer windows {no_answer:.1%}, prepared in {time.time() - t0:.0f}s"
    )

    if config.init_from:
        from bertsearch.search.qa_head import load_qa_model

        model, _ = load_qa_model(config.init_from, attn_implementation=attention, cache_dir=cache_dir,
                                 merge=not config.lora_rank)
        model.train()
    else:
        model = AutoModelForQuestionAnswering.from_pretrained(
            base, attn_implementation=attention_for(AutoConfig.from_pretrained(base), attention))
    if config.lora_rank:
        adapters = lora_settings(model)
        if adapters and adapters["rank"] != config.lora_rank:
            raise ConfigError(f"--init-from has low-rank adapters of rank {adapters['rank']}: pass --lora-rank "
                              f"{adapters['rank']} to train them on")
        if not adapters:
            add_lora(model, config.lora_rank)
        for name, param in model.named_parameters():
            param.requires_grad_("lora_" in name or "LayerNorm" in name or name.endswith(".bias")
                                 or not name.startswith(model.base_model_prefix + "."))
    model.to(device)
    token_types = takes_token_types(model)
    if config.freeze_word_embeddings:
        model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    for layer in model.base_model.encoder.layer[: config.freeze_layers]:
        layer.requires_grad_(False)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_decay = ("bias", "LayerNorm.weight")
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for n, p in params if not n.endswith(no_decay)], "weight_decay": config.weight_decay},
            {"params": [p for n, p in params if n.endswith(no_decay)], "weight_decay": 0.0},
        ],
        lr=config.lr,
        **({"fused": True} if on_gpu else {}),
    )
    batches: list[np.ndarray] = []  # the batches of epoch batches_epoch
    batches_epoch = -1
    if config.shared_norm > 0:
        from bertsearch.search.training.shared_norm import group_batches, shared_norm_loss

        def batches_of(epoch: int) -> list[np.ndarray]:
            return group_batches(features.groups, lengths, config.batch_size, config.seed, epoch)
        # Packing whole groups leaves some batches short: an epoch is as many steps as the first
        # epoch's packing gives (a later epoch's batches are taken in turn).
        batches, batches_epoch = batches_of(0), 0
        steps_per_epoch = len(batches)
    else:
        def batches_of(epoch: int) -> list[np.ndarray]:
            return epoch_batches(lengths, config.batch_size, config.seed, epoch)
        steps_per_epoch = math.ceil(len(features) / config.batch_size)
    total_steps = max(1, int(round(config.epochs * steps_per_epoch)))
    budget_s = config.time_budget_minutes * 60 if config.time_budget_minutes else None
    step = 0
    trained_s = 0.0
    start_windows = 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step = int(checkpoint["step"])
        trained_s = float(checkpoint["trained_s"])
        start_windows = int(checkpoint.get("windows_seen", step * config.batch_size))
        _set_rng_state(checkpoint["rng"])
        log(f"resumed at step {step}/{total_steps} on {device}")
        del checkpoint

    def save_checkpoint() -> None:
        _atomic_torch_save(
            {
                "config": asdict(config), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "step": step, "trained_s": trained_s, "rng": _rng_state(), "windows_seen": start_windows + windows_done,
            },
            ckpt_path,
        )
        log(f"checkpoint at step {step}")

    model.train()
    last_ckpt = time.time()
    t_start = time.time()
    start_step = step
    windows_done = 0
    ema = None
    losses: list[float] = []
    pending: list[Any] = []  # losses still on the device: read at log steps, not every step

    def read_losses() -> float | None:
        nonlocal ema
        for value in torch.stack(pending).float().cpu().tolist() if pending else []:
            losses.append(value)
            ema = value if ema is None else 0.98 * ema + 0.02 * value
        pending.clear()
        return losses[-1] if losses else None
    stop_at = total_steps if config.max_steps is None else min(total_steps, step + config.max_steps)

    def progress() -> float:
        done = step / total_steps
        return max(done, trained_s / budget_s) if budget_s else done

    while step < stop_at and progress() < 1.0:
        t_step = time.time()
        epoch, index = divmod(step, steps_per_epoch)
        if epoch != batches_epoch:
            batches = batches_of(epoch)
            batches_epoch = epoch
        rows = batches[index % len(batches)]
        batch = {k: v.to(device, non_blocking=True) for k, v in collate(features, rows).items()}
        lr = config.lr * lr_factor(progress(), config.warmup_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        threads = tuner.choose()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            out = model(**model_inputs(batch, token_types))
        loss = out.loss
        if config.shared_norm > 0:
            loss = loss + config.shared_norm * shared_norm_loss(
                out.start_logits, out.end_logits, batch["start_positions"], batch["end_positions"],
                batch["token_type_ids"] == 1, torch.from_numpy(features.groups[rows]).to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        took = time.time() - t_step
        trained_s += took
        tuner.record(took, int(batch["attention_mask"].numel()))
        windows_done += len(rows)
        pending.append(loss.detach())
        if not on_gpu or step % config.log_every == 0 or step == stop_at:
            value = read_losses()
        if step % config.log_every == 0 or step == stop_at:
            elapsed = time.time() - t_start
            rate = (step - start_step) / elapsed
            eta = (stop_at - step) / rate if rate > 0 else float("nan")
            if budget_s:
                eta = min(eta, max(0.0, budget_s - trained_s))
            log(
                f"step {step}/{total_steps} epoch {epoch} progress {progress():.1%} loss {value:.3f} "
                f"ema {ema:.3f} lr {lr:.2e} {windows_done / elapsed:.1f} windows/s "
                f"{elapsed / (step - start_step):.2f} s/step threads {threads} eta {eta / 60:.1f} min"
            )
        if time.time() - last_ckpt > config.checkpoint_minutes * 60 and step < stop_at:
            save_checkpoint()
            last_ckpt = time.time()
    read_losses()
    if step > start_step:
        save_checkpoint()
    wall = time.time() - t0
    finished = progress() >= 1.0
    summary: dict[str, Any] = {
        "steps": step, "total_steps": total_steps, "finished": finished, "final_loss_ema": ema,
        "first_loss": losses[0] if losses else None,
        "last_loss": float(np.mean(losses[-5:])) if losses else None,
        "trained_s": round(trained_s, 1),
        # shared normalisation packs whole groups, so its batches are often short of batch_size
        "windows_seen": (start_windows + windows_done) if config.shared_norm > 0 else step * config.batch_size,
        "windows": len(features), "questions": n_questions, "bf16": use_bf16, "device": str(device),
        "session_wall_s": round(wall, 1),
    }
    if not finished:
        log(f"stopped at step {step}/{total_steps} (max_steps); resume to continue")
        return summary

    from bertsearch.search.qa_head import read_qa_meta
    from bertsearch.search.training.export import save_qa_model

    model.to("cpu").eval()
    meta: dict[str, Any] = {"training": {**asdict(config), "steps": step, "trained_s": round(trained_s, 1)}}
    adapters = lora_settings(model)
    if adapters:
        meta["lora"] = adapters
    if config.init_from:
        try:
            meta["continued_from"] = read_qa_meta(config.init_from)
        except ModelLoadError:
            pass  # a Hugging Face QA model: nothing recorded about its training
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    out = save_qa_model(model, tokenizer, config.out_dir, drop_packaged_word_embeddings=config.freeze_word_embeddings
                        and config.base_model is None and named is None, meta=meta, base=named, frozen=frozen, cache_dir=cache_dir)
    summary["out_dir"] = str(out)
    log(f"exported to {out}")
    if config.eval_path:
        try:
            from bertsearch.search.training.evaluate import evaluate_qa_model

            scores = evaluate_qa_model(out, config.eval_path, limit=config.eval_limit)
            summary["eval"] = scores
            log(f"eval on {config.eval_path} (limit {config.eval_limit}): {json.dumps(scores)}")
        except Exception as exc:  # noqa: BLE001 - the export is done; a failed eval must not lose it
            summary["eval_error"] = repr(exc)
            log(f"eval failed: {exc!r}")
    (run_dir / "result.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
