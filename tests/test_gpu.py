"""GPU detection: NVML branches through a fake `pynvml` module, and the real path on this machine."""

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from entrypoint.gpu import (
    NO_GPU,
    DeviceError,
    GpuInfo,
    GpuReport,
    TorchCudaStatus,
    detect_gpus,
    device_warnings,
    format_gpu_status,
    gpu_status_dict,
    resolve_device,
    torch_cuda_status,
)


class FakeNvml:
    """The slice of `pynvml` that entrypoint.gpu calls, with the same exception hierarchy."""

    class NVMLError(Exception):
        pass

    class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801 - pynvml's names
        pass

    class NVMLError_DriverNotLoaded(NVMLError):  # noqa: N801
        pass

    class NVMLError_NotSupported(NVMLError):  # noqa: N801
        pass

    def __init__(self, devices=(), init_error=None, count_error=None):
        self.devices = list(devices)
        self.init_error = init_error
        self.count_error = count_error
        self.initialised = False
        self.shutdowns = 0

    def nvmlInit(self):  # noqa: N802
        if self.init_error:
            raise self.init_error
        self.initialised = True

    def nvmlShutdown(self):  # noqa: N802
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self):  # noqa: N802
        return "550.54.15"

    def nvmlSystemGetCudaDriverVersion(self):  # noqa: N802
        return 12040

    def nvmlDeviceGetCount(self):  # noqa: N802
        if self.count_error:
            raise self.count_error
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index):  # noqa: N802
        return self.devices[index]

    def nvmlDeviceGetName(self, handle):  # noqa: N802
        return handle["name"]

    def nvmlDeviceGetMemoryInfo(self, handle):  # noqa: N802
        return SimpleNamespace(total=handle["total"], used=handle["used"], free=handle["total"] - handle["used"])

    def nvmlDeviceGetUtilizationRates(self, handle):  # noqa: N802
        if handle["util"] is None:
            raise self.NVMLError_NotSupported("Not Supported")
        return SimpleNamespace(gpu=handle["util"], memory=0)


H100 = {"name": b"NVIDIA H100 80GB HBM3", "total": 81559 * 2**20, "used": 1024 * 2**20, "util": 37}
MIG = {"name": "NVIDIA A100-SXM4-40GB MIG 1g.5gb", "total": 4864 * 2**20, "used": 0, "util": None}


def fake_torch(cuda_version, available, names=()):
    return SimpleNamespace(
        __version__="2.13.0+cu128" if cuda_version else "2.13.0+cpu",
        version=SimpleNamespace(cuda=cuda_version),
        cuda=SimpleNamespace(
            is_available=lambda: available,
            device_count=lambda: len(names),
            get_device_name=lambda i: names[i],
        ),
    )


CPU_TORCH = TorchCudaStatus("2.13.0+cpu", False, None, False, 0)
CUDA_TORCH = TorchCudaStatus("2.13.0+cu128", True, "12.8", True, 1, ("NVIDIA H100 80GB HBM3",))
CUDA_TORCH_NO_DEVICE = TorchCudaStatus("2.13.0+cu128", True, "12.8", False, 0)
ONE_GPU = GpuReport((GpuInfo(0, "NVIDIA H100 80GB HBM3", 81559, 1024, 37),), "550.54.15", "12.4")
NO_GPUS = GpuReport(reason=f"{NO_GPU} (NVIDIA driver library libnvidia-ml not found)")


# --------------------------------------------------------------------------------------------- NVML


def test_detect_gpus_lists_every_device():
    nvml = FakeNvml([H100, MIG])
    report = detect_gpus(nvml)
    assert report.reason is None
    assert (report.driver_version, report.cuda_driver_version) == ("550.54.15", "12.4")
    assert report.gpus == (
        GpuInfo(0, "NVIDIA H100 80GB HBM3", 81559, 1024, 37),
        GpuInfo(1, "NVIDIA A100-SXM4-40GB MIG 1g.5gb", 4864, 0, None),
    )
    assert nvml.shutdowns == 1


@pytest.mark.parametrize(
    "error, reason",
    [
        (FakeNvml.NVMLError_LibraryNotFound("NVML Shared Library Not Found"), "libnvidia-ml not found"),
        (FakeNvml.NVMLError_DriverNotLoaded("Driver Not Loaded"), "kernel driver is not loaded"),
        (FakeNvml.NVMLError("Unknown Error"), "NVML: Unknown Error"),
    ],
)
def test_detect_gpus_says_why_there_is_none(error, reason):
    report = detect_gpus(FakeNvml(init_error=error))
    assert report.gpus == ()
    assert report.reason.startswith(NO_GPU)
    assert reason in report.reason


def test_detect_gpus_with_no_devices_and_with_a_failing_query():
    assert detect_gpus(FakeNvml([])).reason == NO_GPU
    nvml = FakeNvml([H100], count_error=FakeNvml.NVMLError("GPU is lost"))
    report = detect_gpus(nvml)
    assert (report.gpus, report.reason) == ((), f"{NO_GPU} (NVML: GPU is lost)")
    assert nvml.shutdowns == 1


def test_real_nvml_on_this_machine():
    report = detect_gpus()
    if report.gpus:  # a GPU machine: the driver answers
        assert report.reason is None and report.driver_version
        assert all(g.memory_total_mib > 0 for g in report.gpus)
    else:
        assert report.reason.startswith(NO_GPU)
        assert report.driver_version is None


# --------------------------------------------------------------------------------------------- torch


def test_torch_cuda_status_of_fake_builds():
    assert torch_cuda_status(fake_torch(None, False)) == CPU_TORCH
    status = torch_cuda_status(fake_torch("12.8", True, ("NVIDIA H100 80GB HBM3",)))
    assert status == CUDA_TORCH


def test_torch_cuda_status_of_the_installed_torch():
    import torch

    status = torch_cuda_status()
    assert status.torch_version == torch.__version__
    assert status.cuda_build == (torch.version.cuda is not None)
    assert status.available == torch.cuda.is_available()


@pytest.mark.parametrize(
    "requested, torch_status, gpus, device",
    [
        ("cpu", CUDA_TORCH, ONE_GPU, "cpu"),
        ("auto", CUDA_TORCH, ONE_GPU, "cuda"),
        ("cuda", CUDA_TORCH, ONE_GPU, "cuda"),
        ("auto", CPU_TORCH, ONE_GPU, "cpu"),
        ("auto", CUDA_TORCH_NO_DEVICE, NO_GPUS, "cpu"),
    ],
)
def test_resolve_device(requested, torch_status, gpus, device):
    assert resolve_device(requested, torch_status=torch_status, gpus=gpus) == device


@pytest.mark.parametrize(
    "torch_status, gpus, message",
    [
        (CPU_TORCH, NO_GPUS, "torch 2.13.0+cpu is a CPU-only build; use the CUDA image"),
        (CPU_TORCH, ONE_GPU, "1 GPU(s) are present, but torch 2.13.0+cpu is a CPU-only build"),
        (
            CUDA_TORCH_NO_DEVICE,
            NO_GPUS,
            "no NVIDIA GPU detected (NVIDIA driver library libnvidia-ml not found); use --device cpu",
        ),
        (
            CUDA_TORCH_NO_DEVICE,
            ONE_GPU,
            "cannot use the 1 GPU(s) NVML sees (driver 550.54.15 supports CUDA 12.4)",
        ),
    ],
)
def test_cuda_without_a_usable_gpu_explains_why(torch_status, gpus, message):
    with pytest.raises(DeviceError) as err:
        resolve_device("cuda", torch_status=torch_status, gpus=gpus)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_device():
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_resolve_device_on_this_machine():
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda") == "cuda"
    else:
        with pytest.raises(DeviceError, match="^device cuda: "):
            resolve_device("cuda")


# --------------------------------------------------------------------------------------------- status


def test_device_warnings():
    assert "use the CUDA image" in device_warnings(ONE_GPU, CPU_TORCH)[0]
    assert "cannot use them" in device_warnings(ONE_GPU, CUDA_TORCH_NO_DEVICE)[0]
    assert device_warnings(ONE_GPU, CUDA_TORCH) == []
    assert device_warnings(NO_GPUS, CPU_TORCH) == []


def test_status_dict_and_text_with_a_gpu():
    status = gpu_status_dict(ONE_GPU, CPU_TORCH)
    assert json.loads(json.dumps(status)) == status
    assert status["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"
    assert status["device_auto"] == "cpu"
    text = format_gpu_status(status)
    assert "GPU 0: NVIDIA H100 80GB HBM3, 1024/81559 MiB used, 37% busy" in text
    assert "NVIDIA driver 550.54.15, CUDA 12.4" in text
    assert "torch 2.13.0+cpu: CPU-only build" in text
    assert "warning: 1 NVIDIA GPU(s) present" in text


def test_status_text_without_a_gpu():
    text = format_gpu_status(gpu_status_dict(NO_GPUS, CUDA_TORCH_NO_DEVICE))
    assert text.splitlines() == [
        "GPU: no NVIDIA GPU detected (NVIDIA driver library libnvidia-ml not found)",
        "torch 2.13.0+cu128: CUDA 12.8 build, no usable device",
        "device auto -> cpu",
    ]


def test_status_on_this_machine_is_json():
    status = gpu_status_dict()
    assert json.loads(json.dumps(status)) == status
    assert format_gpu_status(status)


def test_importing_gpu_loads_neither_torch_nor_nvml():
    code = "import sys, entrypoint.gpu; print(sorted(m for m in ('torch', 'pynvml') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
