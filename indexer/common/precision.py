"""One rule for precision: the encoder, the QA reader and QA training all ask here.

``bf16`` and ``fp32`` give the same vectors (cosine above 0.9999): an index built with one is
searched with the other. ``int8`` (ONNX Runtime, :mod:`bertsearch.indexer.int8`) gives vectors
close to them but not the same, so an index remembers whether it was built with int8.
"""

from __future__ import annotations

from functools import lru_cache

from bertsearch.indexer.common.errors import ConfigError

__all__ = ["PRECISIONS", "cpu_has_native_bf16", "family", "force_native_bf16", "resolve", "use_bf16"]

PRECISIONS = ("auto", "bf16", "fp32", "int8")

_forced: bool | None = None


def force_native_bf16(value: bool | None) -> None:
    """Override what the CPU flags say for the rest of the process (``None``: trust the flags).

    ``Settings`` calls it when ``BERTSEARCH_NATIVE_BF16`` (its ``native_bf16``) is set: the
    environment is read there, once, and nowhere else.
    """
    global _forced
    _forced = value


def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AMX or AVX512-BF16), read from ``/proc/cpuinfo``.

    bf16 autocast without these instructions is emulated and slower than fp32.
    :func:`force_native_bf16` (``BERTSEARCH_NATIVE_BF16=0`` or ``1`` through ``Settings``)
    overrides what the flags say: for a virtual machine whose flags are wrong, or to try the
    path of the other kind of CPU.
    """
    if _forced is not None:
        return _forced
    return _cpuinfo_has_bf16()


@lru_cache(maxsize=1)
def _cpuinfo_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def use_bf16(precision: str, device_type: str = "cpu") -> bool:
    """Whether to run under bf16 autocast for a ``precision`` of ``auto``, ``bf16`` or ``fp32``
    on a ``device_type`` of ``cpu`` or ``cuda`` (``auto``: when the device runs bf16 natively).

    Raises:
        ConfigError: Another value.
    """
    if precision not in PRECISIONS or precision == "int8":
        raise ConfigError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    if precision != "auto":
        return precision == "bf16"
    if device_type == "cuda":
        import torch

        return bool(torch.cuda.is_bf16_supported())
    return cpu_has_native_bf16()


def resolve(precision: str) -> str:
    """The precision ``auto`` stands for on this CPU, for inference: ``bf16`` with native bf16;
    else ``int8`` when ONNX Runtime is installed (measured faster than fp32 on CPUs without
    native bf16, with retrieval within 0.5 points: ``benchmarks/encode.py``,
    ``benchmarks/eval_retrieval.py``); else ``fp32``. Other values are returned as they are.

    Raises:
        ConfigError: Not one of :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be auto, bf16, fp32 or int8, not {precision!r}")
    if precision != "auto":
        return precision
    if cpu_has_native_bf16():
        return "bf16"
    from bertsearch.indexer import int8

    return "int8" if int8.available() else "fp32"


def family(precision: str | None) -> str:
    """``int8`` or ``float`` (bf16 and fp32, interchangeable): which vectors a precision makes."""
    return "int8" if precision == "int8" else "float"
