import pytest
import torch

from geovigie.errors import DeviceUnavailableError
from geovigie.inference import local_cluster_kind
from geovigie.models import inference_context, resolve_device


def test_auto_and_cpu() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without a GPU")
def test_cuda_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
        resolve_device("cuda")


def test_unknown_device() -> None:
    with pytest.raises(DeviceUnavailableError, match="unknown device"):
        resolve_device("tpu")


def test_amp_is_off_on_cpu_and_output_float32() -> None:
    net = torch.nn.Conv2d(3, 2, 3)
    with inference_context(torch.device("cpu"), amp=True):
        out = net(torch.zeros(1, 3, 8, 8))
    assert out.dtype == torch.float32
    assert not out.requires_grad


def test_cluster_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    assert local_cluster_kind("cpu", cuda_available=True) == "cpu"
    assert local_cluster_kind("auto", cuda_available=False) == "cpu"
    import sys
    import types

    monkeypatch.setitem(sys.modules, "dask_cuda", types.ModuleType("dask_cuda"))
    assert local_cluster_kind("auto", cuda_available=True) == "cuda"
    assert local_cluster_kind("cuda", cuda_available=True) == "cuda"
