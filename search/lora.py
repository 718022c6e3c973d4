"""Low-rank adapters (LoRA) on an encoder's linear layers, and folding them back in.

A head trained on a large named encoder (``train-qa --base-model all-mpnet-base-v2 --lora-rank 16``)
keeps every weight matrix of the encoder fixed and learns, beside each, ``B @ A`` of rank ``r``
(Hu et al., 2021): ``y = x W^T + b + (alpha / r) * x A^T B^T``. Only the adapters, the biases and
LayerNorms and the span head are trained; on a named encoder only they are stored, a few MB
against the encoder's hundreds;
loading adds the adapters to the encoder's fixed weights (:func:`add_lora`, then
:func:`merge_lora`), so reading costs what the plain encoder costs.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["LORA_TARGETS", "add_lora", "lora_settings", "merge_lora"]

# The linear layers of a BERT or MPNet encoder layer that get adapters (by the last part of the
# module's name): attention (BERT query/key/value/output.dense, MPNet q/k/v/o) and the
# feed-forward pair (intermediate.dense, output.dense).
LORA_TARGETS = ("query", "key", "value", "q", "k", "v", "o", "dense")


@functools.cache
def _lora_linear_class() -> Any:
    import torch

    class LoRALinear(torch.nn.Module):
        """A fixed ``nn.Linear`` plus a trainable low-rank update (``lora_b`` starts at zero)."""

        def __init__(self, base: torch.nn.Linear, rank: int, alpha: float) -> None:
            super().__init__()
            self.weight = base.weight
            self.bias = base.bias
            self.weight.requires_grad_(False)
            self.rank, self.alpha = rank, alpha
            self.scale = alpha / rank
            self.lora_a = torch.nn.Parameter(torch.empty(rank, base.in_features))
            self.lora_b = torch.nn.Parameter(torch.zeros(base.out_features, rank))
            torch.nn.init.kaiming_uniform_(self.lora_a, a=5 ** 0.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.nn.functional.linear(x, self.weight, self.bias)
            low_rank = torch.nn.functional.linear(torch.nn.functional.linear(x, self.lora_a), self.lora_b)
            return out + low_rank * self.scale

        def merged(self) -> torch.nn.Linear:
            weight = self.weight
            linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=self.bias is not None,
                                     device=weight.device, dtype=weight.dtype)
            with torch.no_grad():
                update = (self.lora_b.float() @ self.lora_a.float()) * self.scale
                linear.weight.copy_((weight.float() + update).to(weight.dtype))
                if self.bias is not None:
                    linear.bias.copy_(self.bias)
            linear.weight.requires_grad_(weight.requires_grad)
            return linear

    return LoRALinear


def _encoder_layers(model: Any) -> Any:
    return model.base_model.encoder.layer


def add_lora(model: Any, rank: int, alpha: float | None = None) -> list[str]:
    """Put an adapter of rank ``rank`` beside every linear layer of the encoder's layers.

    Args:
        model: A ``...ForQuestionAnswering`` model (BERT or MPNet).
        rank: The adapters' rank.
        alpha: Their scale's numerator (default ``2 * rank``).

    Returns:
        The names of the wrapped modules.
    """
    import torch

    lora_linear = _lora_linear_class()
    alpha = float(alpha if alpha is not None else 2 * rank)
    wrapped = []
    for i, layer in enumerate(_encoder_layers(model)):
        for name, module in list(layer.named_modules()):
            if not isinstance(module, torch.nn.Linear) or name.rsplit(".", 1)[-1] not in LORA_TARGETS:
                continue
            parent = layer.get_submodule(name.rsplit(".", 1)[0]) if "." in name else layer
            setattr(parent, name.rsplit(".", 1)[-1], lora_linear(module, rank, alpha))
            wrapped.append(f"layer.{i}.{name}")
    return wrapped


def merge_lora(model: Any) -> Any:
    """Fold every adapter into its linear layer (the model then is a plain one); returns ``model``."""
    for layer in _encoder_layers(model):
        for name, module in list(layer.named_modules()):
            if hasattr(module, "lora_a") and hasattr(module, "merged"):
                parent = layer.get_submodule(name.rsplit(".", 1)[0]) if "." in name else layer
                setattr(parent, name.rsplit(".", 1)[-1], module.merged())
    return model


def lora_settings(model: Any) -> dict[str, float] | None:
    """``{"rank": r, "alpha": a}`` of the model's adapters, ``None`` when it has none."""
    for module in model.modules():
        if hasattr(module, "lora_a") and hasattr(module, "merged"):
            return {"rank": module.rank, "alpha": module.alpha}
    return None
