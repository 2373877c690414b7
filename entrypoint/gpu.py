"""GPUs as NVML sees them, what torch can use, and the device a run should get.

NVML (nvidia-ml-py) reports the hardware and driver even when torch cannot use them, which is how
`status` tells "no GPU here" apart from "GPU here, but this is the CPU image". NVML ignores
CUDA_VISIBLE_DEVICES; torch honours it. torch is imported inside the functions that need it.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

DEVICES = ("auto", "cpu", "cuda")
NO_GPU = "no NVIDIA GPU detected"


class DeviceError(Exception):
    """The requested device cannot be used; str() is one line. The CLI exits with code 6."""


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    memory_total_mib: int
    memory_used_mib: int
    utilization_percent: int | None  # None where the GPU does not report it (e.g. MIG)


@dataclass(frozen=True)
class GpuReport:
    gpus: tuple[GpuInfo, ...] = ()
    driver_version: str | None = None
    cuda_driver_version: str | None = None  # the newest CUDA the driver supports, e.g. "12.4"
    reason: str | None = None  # why `gpus` is empty


@dataclass(frozen=True)
class TorchCudaStatus:
    torch_version: str | None  # None: torch is not installed
    cuda_build: bool
    cuda_version: str | None  # the CUDA torch was built with (torch.version.cuda)
    available: bool  # torch.cuda.is_available()
    device_count: int
    device_names: tuple[str, ...] = field(default_factory=tuple)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def detect_gpus(nvml: Any = None) -> GpuReport:
    """List the GPUs NVML sees. `nvml` defaults to the `pynvml` module (a fake in unit tests)."""
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            return GpuReport(reason=f"{NO_GPU} (nvidia-ml-py is not installed)")
    nvml_error = getattr(nvml, "NVMLError", Exception)
    try:
        nvml.nvmlInit()
    except nvml_error as err:
        if isinstance(err, getattr(nvml, "NVMLError_LibraryNotFound", ())):
            return GpuReport(reason=f"{NO_GPU} (NVIDIA driver library libnvidia-ml not found)")
        if isinstance(err, getattr(nvml, "NVMLError_DriverNotLoaded", ())):
            return GpuReport(reason=f"{NO_GPU} (the NVIDIA kernel driver is not loaded)")
        return GpuReport(reason=f"{NO_GPU} (NVML: {err})")
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        try:
            cuda = nvml.nvmlSystemGetCudaDriverVersion()
            cuda_version = f"{cuda // 1000}.{cuda % 1000 // 10}"
        except nvml_error:
            cuda_version = None
        gpus = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                utilization = int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except nvml_error:
                utilization = None
            gpus.append(
                GpuInfo(
                    index=index,
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    memory_total_mib=int(memory.total) // 2**20,
                    memory_used_mib=int(memory.used) // 2**20,
                    utilization_percent=utilization,
                )
            )
    except nvml_error as err:
        return GpuReport(reason=f"{NO_GPU} (NVML: {err})")
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml_error:
            pass
    return GpuReport(
        gpus=tuple(gpus),
        driver_version=driver,
        cuda_driver_version=cuda_version,
        reason=None if gpus else NO_GPU,
    )


def _installed_torch_build() -> tuple[str, str | None] | None:
    """(version, CUDA version or None) of the installed torch, read from torch/version.py without
    importing torch (which takes about a second); None when that file cannot be read."""
    import ast
    import importlib.util
    from pathlib import Path

    try:
        spec = importlib.util.find_spec("torch")
        if spec is None or not spec.origin:
            return None
        tree = ast.parse((Path(spec.origin).parent / "version.py").read_text())
    except (OSError, ValueError, SyntaxError):
        return None
    values = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            for target in targets:
                if isinstance(target, ast.Name) and isinstance(node.value, ast.Constant):
                    values[target.id] = node.value.value
    if "__version__" not in values:
        return None
    return str(values["__version__"]), values.get("cuda")


def torch_cuda_status(torch_module: Any = None, gpus: GpuReport | None = None) -> TorchCudaStatus:
    """Whether this torch is a CUDA build and which devices it can use.

    A CPU build of torch, or a CUDA build with no GPU that NVML can see (`gpus`), cannot use
    CUDA: that is answered from torch's version file, without importing torch.
    """
    import sys

    torch = torch_module or sys.modules.get("torch")
    if torch is None:
        build = _installed_torch_build()
        if build is not None and (build[1] is None or (gpus is not None and not gpus.gpus)):
            return TorchCudaStatus(build[0], build[1] is not None, build[1], False, 0)
        try:
            import torch
        except ImportError:
            return TorchCudaStatus(None, False, None, False, 0)
    cuda_version = getattr(torch.version, "cuda", None)
    available = bool(cuda_version) and bool(torch.cuda.is_available())
    count = int(torch.cuda.device_count()) if available else 0
    names = tuple(_text(torch.cuda.get_device_name(i)) for i in range(count))
    return TorchCudaStatus(
        torch_version=str(torch.__version__),
        cuda_build=bool(cuda_version),
        cuda_version=cuda_version,
        available=available,
        device_count=count,
        device_names=names,
    )


def resolve_device(
    requested: str, *, torch_status: TorchCudaStatus | None = None, gpus: GpuReport | None = None
) -> str:
    """ "auto" → "cuda" if torch can use a GPU, else "cpu"; "cuda" without one raises DeviceError."""
    if requested not in DEVICES:
        raise DeviceError(f"unknown device {requested!r} (expected one of: {', '.join(DEVICES)})")
    if requested == "cpu":
        return "cpu"
    status = torch_status or torch_cuda_status()
    if status.available:
        return "cuda"
    if requested == "auto":
        return "cpu"
    report = gpus or detect_gpus()
    if status.torch_version is None:
        raise DeviceError("device cuda: torch is not installed")
    if not status.cuda_build:
        seen = f"{len(report.gpus)} GPU(s) are present, but " if report.gpus else ""
        raise DeviceError(
            f"device cuda: {seen}torch {status.torch_version} is a CPU-only build; "
            "use the CUDA image (cluster-code-rl:cuda) or --device cpu"
        )
    if not report.gpus:
        raise DeviceError(f"device cuda: {report.reason or NO_GPU}; use --device cpu or run on a GPU node")
    raise DeviceError(
        f"device cuda: torch {status.torch_version} (CUDA {status.cuda_version}) cannot use "
        f"the {len(report.gpus)} GPU(s) NVML sees (driver {report.driver_version} supports CUDA "
        f"{report.cuda_driver_version}); check the driver version and CUDA_VISIBLE_DEVICES"
    )


def device_warnings(gpus: GpuReport, torch_status: TorchCudaStatus) -> list[str]:
    """Set-ups that silently waste a GPU."""
    warnings = []
    if gpus.gpus and torch_status.torch_version and not torch_status.cuda_build:
        warnings.append(
            f"{len(gpus.gpus)} NVIDIA GPU(s) present but torch {torch_status.torch_version} is a "
            "CPU-only build: use the CUDA image (cluster-code-rl:cuda) to train on the GPU"
        )
    elif gpus.gpus and torch_status.cuda_build and not torch_status.available:
        warnings.append(
            f"NVIDIA GPU(s) present but torch (CUDA {torch_status.cuda_version}) cannot use them: "
            f"driver {gpus.driver_version} supports CUDA {gpus.cuda_driver_version}; "
            "check the driver and CUDA_VISIBLE_DEVICES"
        )
    return warnings


def gpu_status_dict(gpus: GpuReport | None = None, torch_status: TorchCudaStatus | None = None) -> dict:
    """Everything above as plain JSON-able data (for `status --output json`)."""
    gpus = gpus or detect_gpus()
    torch_status = torch_status or torch_cuda_status(gpus=gpus)
    return {
        "gpus": [asdict(g) for g in gpus.gpus],
        "driver_version": gpus.driver_version,
        "cuda_driver_version": gpus.cuda_driver_version,
        "reason": gpus.reason,
        "torch": asdict(torch_status) | {"device_names": list(torch_status.device_names)},
        "device_auto": "cuda" if torch_status.available else "cpu",
        "warnings": device_warnings(gpus, torch_status),
    }


def format_gpu_status(status: dict) -> str:
    """A few human-readable lines from `gpu_status_dict()`."""
    lines = []
    for gpu in status["gpus"]:
        busy = "" if gpu["utilization_percent"] is None else f", {gpu['utilization_percent']}% busy"
        lines.append(
            f"GPU {gpu['index']}: {gpu['name']}, {gpu['memory_used_mib']}/{gpu['memory_total_mib']} MiB used{busy}"
        )
    if status["gpus"]:
        lines.append(f"NVIDIA driver {status['driver_version']}, CUDA {status['cuda_driver_version'] or 'unknown'}")
    else:
        lines.append(f"GPU: {status['reason']}")
    torch = status["torch"]
    if torch["torch_version"] is None:
        lines.append("torch: not installed")
    elif not torch["cuda_build"]:
        lines.append(f"torch {torch['torch_version']}: CPU-only build")
    else:
        usable = f"{torch['device_count']} device(s) usable" if torch["available"] else "no usable device"
        lines.append(f"torch {torch['torch_version']}: CUDA {torch['cuda_version']} build, {usable}")
    lines.append(f"device auto -> {status['device_auto']}")
    lines.extend(f"warning: {w}" for w in status["warnings"])
    return "\n".join(lines)
