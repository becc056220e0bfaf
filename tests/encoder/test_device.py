"""Device and dtype choice (encoder/device.py): auto rules on CPU and CUDA, explicit choices kept."""

from __future__ import annotations

import logging

import pytest
import torch

from encoder import device as dev


def test_auto_device_follows_cuda_availability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert dev.resolve_device("auto") == torch.device("cpu") and dev.resolve_device("cpu") == torch.device("cpu")
    assert dev.resolve_device("cuda") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.resolve_device("auto") == torch.device("cuda") and dev.resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("bf16", [True, False])
def test_dtypes(monkeypatch: pytest.MonkeyPatch, bf16: bool) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert dev.resolve_dtype("auto", cpu) == torch.float32
    assert dev.resolve_dtype("float16", cpu) == torch.float16 and dev.resolve_dtype("float32", cuda) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    assert dev.resolve_dtype("auto", cuda) == (torch.bfloat16 if bf16 else torch.float16)


def test_bf16_on_a_cpu_without_it_warns(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    assert isinstance(dev.cpu_supports_bf16(), bool)
    monkeypatch.setattr(dev, "cpu_supports_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="encoder.device"):
        assert dev.resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    assert "without native bf16" in caplog.text
    monkeypatch.setattr(dev, "cpu_supports_bf16", lambda: True)
    caplog.clear()
    assert dev.resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16 and not caplog.text
