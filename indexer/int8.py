"""int8 inference with ONNX Runtime: the fast path on CPUs without native bf16.

A model folder is exported to ONNX once (``torch.onnx``), its weights quantized to int8 per
channel (``onnxruntime.quantization.quantize_dynamic``: activations are quantized on the fly,
per batch, so a text's vector can move in the 4th decimal with its batch mates),
and the result cached under ``<cache_dir>/onnx/``, named by the model's fingerprint and the
ONNX Runtime version. Nothing is downloaded; the export reads the local folder only.

On the packaged all-MiniLM-L6-v2 the int8 vectors match fp32 ones to a cosine of 0.985 at
worst and 0.994 on average (600 SQuAD paragraphs), and retrieval on SQuAD v1.1 dev moves by
less than 0.5 points (``benchmarks/eval_retrieval.py``): good enough, unlike PyTorch's own
dynamic quantization (per-tensor weights: cosine 0.88 at worst), which is not used.

ONNX Runtime is an optional extra: ``pip install 'bertsearch[onnx]'``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bertsearch.indexer.common.errors import ConfigError, ModelLoadError
from bertsearch.indexer.files import atomic_write

__all__ = ["INSTALL_HINT", "Int8Session", "available", "cached_model"]

log = logging.getLogger(__name__)

INSTALL_HINT = "int8 needs ONNX Runtime: pip install 'bertsearch[onnx]'"

_OPSET = 17
_export_lock = threading.Lock()


def available() -> bool:
    """Whether ONNX Runtime and the ONNX package (for the export) are installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _require() -> Any:
    if not available():
        raise ConfigError(INSTALL_HINT)
    import onnxruntime

    return onnxruntime


def cached_model(model_path: Path | str, fingerprint: str, cache_dir: Path, kind: str,
                 load_torch: Callable[[], Any], input_names: list[str], output_names: list[str]) -> Path:
    """The int8 ONNX file of a model, exported and quantized on first use.

    Args:
        model_path: The model folder, or what to call a model without one (named in the log only:
            the model is read through ``load_torch``).
        fingerprint: The model's fingerprint (``Encoder.model_id``, or the reader's hash of an in-memory
            model's weights): a changed model gets a new file.
        cache_dir: Where the file is kept (``<cache_dir>/onnx/``).
        kind: ``encoder`` or ``qa``: part of the file name.
        load_torch: Loads the model as a ``torch.nn.Module`` in eval mode with eager attention,
            whose ``forward`` takes ``input_names`` as keyword arguments and returns
            ``output_names`` first in its output.
        input_names: The model's inputs (any order: they are put in the order of ``forward``).
        output_names: The outputs to keep.

    Raises:
        ConfigError: ONNX Runtime is missing, or the cache folder cannot be written.
        ModelLoadError: The export failed.
    """
    ort = _require()
    safe = "".join(ch if ch.isalnum() or ch in "-_.@" else "_" for ch in fingerprint)
    target = Path(cache_dir).expanduser() / "onnx" / f"{safe}-{kind}-int8-ort{ort.__version__}.onnx"
    if target.is_file():
        return target
    with _export_lock:
        if target.is_file():
            return target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot write the int8 model cache in {target.parent}: {exc.strerror}; "
                              "set BERTSEARCH_CACHE_DIR to a writable folder") from exc
        log.info("exporting %s to int8 ONNX (once, cached in %s)", model_path, target.parent)
        try:
            with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp:
                fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
                _export(load_torch(), fp32, input_names, output_names)
                _quantize(fp32, int8)
                # The one atomic replace: a reader sees no file or the whole file, after a crash too.
                with open(int8, "rb") as src, atomic_write(target) as out:
                    shutil.copyfileobj(src, out, 1 << 20)
        except OSError as exc:  # disk full, permissions: nothing half written stays
            raise ConfigError(f"cannot write the int8 model cache in {target.parent}: "
                              f"{exc.strerror or exc}; set BERTSEARCH_CACHE_DIR to a writable folder") from exc
    return target


def _export(model: Any, out: Path, input_names: list[str], output_names: list[str]) -> None:
    import inspect

    import torch

    # The exporter names the graph's inputs in the order of forward's parameters.
    order = list(inspect.signature(model.forward).parameters)
    input_names = sorted(input_names, key=lambda name: order.index(name) if name in order else len(order))
    dummy = {name: torch.ones((2, 8), dtype=torch.long) for name in input_names}
    axes = {name: {0: "batch", 1: "tokens"} for name in [*input_names, *output_names]}
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter (what torch 2.13, which bertsearch pins, exports BERT with
            # without onnxscript) warns that it is legacy.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (), str(out), kwargs=dummy, input_names=input_names, output_names=output_names,
                dynamic_axes=axes, opset_version=_OPSET, dynamo=False,
            )
    except Exception as exc:  # torch.onnx raises many kinds for unsupported models
        raise ModelLoadError(f"cannot export the model to ONNX for int8: {exc}") from exc


def _quantize(fp32: Path, int8: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "consider pre-processing" is logged on the root logger
    try:
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    except Exception as exc:
        raise ModelLoadError(f"cannot quantize the model to int8: {exc}") from exc
    finally:
        root.setLevel(level)


class Int8Session:
    """An ONNX Runtime session over an int8 file: ``session(inputs) -> first output``.

    Thread-safe (ONNX Runtime's ``run`` is); uses as many threads as this process may run on.
    """

    def __init__(self, path: Path, threads: int) -> None:
        ort = _require()
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelLoadError(f"cannot load the int8 model {path.name}: {exc}") from exc
        self.input_names = [i.name for i in self._session.get_inputs()]

    def __call__(self, inputs: dict[str, Any]) -> list[np.ndarray]:
        feed = {name: np.asarray(inputs[name], dtype=np.int64) for name in self.input_names}
        return self._session.run(None, feed)
