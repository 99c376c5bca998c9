"""Where the neural parts run: the full backend's torch device and dtype, and the ONNX
execution providers for that device. One place, so `vmb engine status`, every cue's report
and the encoders agree on what they say.

The device policy itself (``models.device``, ``generate.dtype``) is
``engine.generate.full.availability.pick_device`` / ``pick_dtype``; this module reports it.
"""

from __future__ import annotations

from typing import Any

from bridge.errors import ConfigError

CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"


def device_type(preference: str) -> str:
    """The ONNX encoders' device, cuda or cpu: the models.device setting, auto meaning
    CUDA where torch sees one. MPS has no ONNX provider here: the CPU runs the encoders."""
    if preference == "cpu" or preference == "mps":
        return "cpu"
    if preference == "cuda":
        return "cuda"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def available_providers() -> list[str]:
    """What this onnxruntime build offers (a boundary tests may replace). onnxruntime-gpu
    lists CUDA even without a GPU: the session's own get_providers() says what ran."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def onnx_providers(device: str, available: list[str] | None = None) -> list[str]:
    """Providers to ask for, best first: CUDA when the device is CUDA and this onnxruntime
    has it (onnxruntime-gpu), then always the CPU as the fallback."""
    offered = available_providers() if available is None else available
    return [CUDA_EP, CPU_EP] if device == "cuda" and CUDA_EP in offered else [CPU_EP]


def full_backend_device(settings: Any) -> dict[str, Any]:
    """The device, its name and the dtype the full backend runs on under these settings
    (no weights needed); ``error`` instead where the setting cannot be honoured."""
    import torch

    from engine.generate.full.availability import pick_device, pick_dtype

    out: dict[str, Any] = {
        "device": None,
        "device_name": None,
        "dtype": None,
        "offload": settings.generate.offload,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
    try:
        device = pick_device(settings.models.device)
    except ConfigError as exc:
        out["error"] = exc.message
        return out
    dtype = pick_dtype(settings.generate.dtype, device)
    out["device"] = device.type
    out["dtype"] = str(dtype).replace("torch.", "")
    if device.type == "cuda":
        out["device_name"] = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        out["device_name"] = "Apple GPU (MPS)"
    else:
        out["device_name"] = "CPU"
    return out


def compute_report(settings: Any) -> dict[str, Any]:
    """`vmb engine status`'s compute block: the full backend's device and dtype, and the
    ONNX providers the encoders would ask for."""
    report = full_backend_device(settings)
    try:
        import onnxruntime as ort

        wanted = onnx_providers(device_type(settings.models.device))
        report["onnxruntime"] = ort.__version__
        report["onnx_providers"] = wanted
        report["onnx_available"] = available_providers()
    except ImportError as exc:
        report["onnxruntime"] = None
        report["onnx_providers"] = []
        report["onnx_error"] = f"onnxruntime does not import: {exc}"
    return report


def describe(report: dict[str, Any]) -> str:
    """One line for people: "cuda (NVIDIA H200), bfloat16; ONNX: CUDAExecutionProvider"."""
    if report.get("error"):
        head = f"unavailable ({report['error']})"
    else:
        head = f"{report['device']} ({report['device_name']}), {report['dtype']}"
        if report.get("offload"):
            head += ", offload on"
    providers = report.get("onnx_providers")
    tail = (
        f"ONNX encoders: {', '.join(providers)}"
        if providers
        else report.get("onnx_error", "no onnxruntime")
    )
    return f"{head}; {tail}"
