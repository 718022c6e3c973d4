"""One rule for bf16: the encoder, the QA reader and QA training all ask :func:`use_bf16`."""

from __future__ import annotations

from functools import lru_cache

from bertsearch.indexer.common.errors import ConfigError

__all__ = ["PRECISIONS", "cpu_has_native_bf16", "use_bf16"]

PRECISIONS = ("auto", "bf16", "fp32")


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AMX or AVX512-BF16), read from ``/proc/cpuinfo``.

    bf16 autocast without these instructions is emulated and slower than fp32.
    """
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
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    if precision != "auto":
        return precision == "bf16"
    if device_type == "cuda":
        import torch

        return bool(torch.cuda.is_bf16_supported())
    return cpu_has_native_bf16()
