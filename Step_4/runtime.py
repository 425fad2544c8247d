"""Where an encoder runs while features are extracted: PyTorch, OpenVINO or ONNX Runtime, in fp32 or bf16.

`runtime: openvino | onnxruntime` (`auto`: openvino on the CPU, torch on a GPU) exports the encoder (eval mode,
its weights as they are now) to ONNX with torch.onnx and runs the export on the CPU. In fp32 its features equal PyTorch's within FP32_TOLERANCE (tested).
`precision: bf16` computes in bfloat16: torch autocast (CUDA, or a CPU with bf16 support), or OpenVINO's bf16
inference; its features drift from fp32 (lowest cosine over the 4,500 default memes: 0.99995 for text, 0.97
for vision). `auto` is bf16 on CUDA; on the CPU it is bf16 only for an encoder whose bf16 features stay within
BF16_CPU_COSINE of fp32 (it says so: `bf16_on_cpu`, e.g. the text transformers) on a CPU with bf16 matrix
instructions (AMX-BF16 or AVX512-BF16), where it is 1.8x faster; everywhere else fp32. So a CPU without those
instructions gives fp32 text features, and metrics that differ from a bf16 CPU's in the last digits (docs/performance.md).

An encoder that can be exported says which batch tensors its forward takes (`runtime_inputs(batch)`, in the
order of its forward's arguments) and which of their axes vary (`runtime_axes`).
"""
from __future__ import annotations

import contextlib
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from core import threads
from core.errors import PipelineError

RUNTIMES = ("auto", "torch", "openvino", "onnxruntime")  # auto: openvino on the CPU, torch on CUDA
PRECISIONS = ("auto", "fp32", "bf16")
FP32_TOLERANCE = 1e-4  # max |exported - torch| per feature, fp32 (measured: ~1e-5 for EfficientNet-Lite0 and MiniLM)
BF16_COSINE = 0.99  # what the test asks of bf16 features on its images (cosine with fp32; measured >= 0.996)
BF16_CPU_COSINE = 0.9999  # what `auto` asks of an encoder before it runs in bf16 on a CPU (MiniLM: >= 0.99995)
STATIC_ROWS = 8  # OpenVINO runs an encoder whose only varying axis is the batch in chunks of this many rows, on a
# static shape (the last chunk padded): 1.39x the images/s of a dynamic batch of 64 (EfficientNet-Lite0, 2 cores)


def resolve_precision(precision: str, device: str) -> str:
    """'fp32' or 'bf16' for a configured precision on a device."""
    if precision not in PRECISIONS:
        raise PipelineError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if str(device).startswith("cuda") else "fp32"
    return precision


def cpu_has_bf16() -> bool:
    """True on a CPU with bf16 matrix instructions (x86 AMX-BF16 or AVX512-BF16, from /proc/cpuinfo's flags);
    elsewhere bf16 matmuls are emulated and slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"\b(amx_bf16|avx512_bf16)\b", flags) is not None


def plan(encoder: torch.nn.Module, runtime: str, precision: str, device: str) -> dict:
    """The runtime and precision that run this encoder on this device. Runtime `auto` is openvino on the CPU for
    an encoder that can be exported (`runtime_inputs`), else torch; precision `auto` as in the module's
    docstring. The feature cache fingerprint records the plan: features from another runtime or precision
    differ slightly."""
    if runtime not in RUNTIMES:
        raise PipelineError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    chosen = resolve_precision(precision, device)
    if precision == "auto" and str(device) == "cpu" and getattr(encoder, "bf16_on_cpu", False) and cpu_has_bf16():
        chosen = "bf16"
    if runtime == "auto":
        runtime = "openvino" if str(device) == "cpu" and hasattr(encoder, "runtime_inputs") else "torch"
    return {"runtime": runtime, "precision": chosen}


@contextlib.contextmanager
def inference(encoder: torch.nn.Module, runtime: str, precision: str, device: str) -> Iterator[None]:
    """Within the block, `encoder.features(batch)` runs on the runtime at the precision (float32 out)."""
    chosen = plan(encoder, runtime, precision, device)
    runtime, precision = chosen["runtime"], chosen["precision"]
    if (runtime == "torch" and precision == "fp32") or "features" in vars(encoder):  # plain, or already inside
        yield
        return
    if runtime == "torch":
        run = _autocast(encoder.features, device)
    else:
        if str(device) != "cpu":
            raise PipelineError(f"runtime {runtime} runs on the CPU; on device {device} use runtime: torch or auto")
        if not hasattr(encoder, "runtime_inputs"):
            raise PipelineError(f"{type(encoder).__name__} cannot be exported to {runtime}; use runtime: torch")
        run = Exported(encoder, runtime, precision)
    encoder.features = run  # an instance attribute: shadows the method until the block ends
    try:
        yield
    finally:
        del encoder.features


def _autocast(features: Callable, device: str) -> Callable:
    device_type = "cuda" if str(device).startswith("cuda") else "cpu"

    def run(batch: dict) -> torch.Tensor:
        with torch.autocast(device_type, dtype=torch.bfloat16):
            return features(batch).float()

    return run


class Exported:
    """The encoder exported on its first batch, then run by OpenVINO / ONNX Runtime for every batch."""

    def __init__(self, encoder: torch.nn.Module, runtime: str, precision: str):
        if runtime == "onnxruntime" and precision == "bf16":
            raise PipelineError("onnxruntime runs fp32 here; for bf16 use runtime: openvino or torch")
        self.encoder, self.runtime, self.precision = encoder, runtime, precision
        self.session = None

    def __call__(self, batch: dict) -> torch.Tensor:
        inputs = self.encoder.runtime_inputs(batch)
        if self.session is None:
            self.session = self._compile(inputs)
        arrays = [t.detach().cpu().numpy() for t in inputs.values()]
        return torch.from_numpy(np.ascontiguousarray(self.session(arrays), dtype=np.float32))

    def _compile(self, example: dict[str, torch.Tensor]) -> Callable[[list], np.ndarray]:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "encoder.onnx"
            export_onnx(self.encoder, example, path)
            if self.runtime == "openvino":
                return self._openvino(path, example)
            return self._onnxruntime(path, list(example))

    def _openvino(self, path: Path, example: dict[str, torch.Tensor]) -> Callable[[list], np.ndarray]:
        try:
            import openvino as ov
        except ImportError:
            raise PipelineError("runtime openvino needs the 'openvino' package (make setup)") from None
        core = ov.Core()
        model = core.read_model(str(path))
        static = all(set(axes) == {0} for axes in self.encoder.runtime_axes.values())
        if static:
            model.reshape({name: [STATIC_ROWS, *t.shape[1:]] for name, t in example.items()})
        compiled = core.compile_model(model, "CPU", {
            "INFERENCE_NUM_THREADS": threads.current(), "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bf16" else "f32"})
        request = compiled.create_infer_request()
        if not static:
            return lambda arrays: request.infer(arrays)[0].copy()

        def in_chunks(arrays: list[np.ndarray]) -> np.ndarray:
            rows, out = len(arrays[0]), []
            for start in range(0, rows, STATIC_ROWS):
                chunk = [a[start:start + STATIC_ROWS] for a in arrays]
                short = STATIC_ROWS - len(chunk[0])
                if short:  # pad the last chunk to the static shape; the padded rows are dropped below
                    chunk = [np.concatenate([c, np.zeros((short, *c.shape[1:]), dtype=c.dtype)]) for c in chunk]
                out.append(request.infer(chunk)[0][:STATIC_ROWS - short].copy())
            return np.concatenate(out)

        return in_chunks

    def _onnxruntime(self, path: Path, names: list[str]) -> Callable[[list], np.ndarray]:
        try:
            import onnxruntime as ort
        except ImportError:
            raise PipelineError("runtime onnxruntime needs the 'onnxruntime' package (pip install onnxruntime)") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads.current(), 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda arrays: session.run(None, dict(zip(names, arrays)))[0]


def export_onnx(encoder: torch.nn.Module, example: dict[str, torch.Tensor], path: Path) -> None:
    """The encoder's forward on these inputs (by name, varying along `runtime_axes`) as an ONNX file."""
    encoder.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on Python branches it fixes at this input
            torch.onnx.export(encoder, tuple(example.values()), str(path), input_names=list(example),
                              output_names=["features"], dynamic_axes=dict(encoder.runtime_axes),
                              opset_version=17, dynamo=False)
    except Exception as err:  # an architecture the exporter cannot trace
        raise PipelineError(f"cannot export {type(encoder).__name__} to ONNX ({type(err).__name__}: {err}); "
                            "use runtime: torch") from None
