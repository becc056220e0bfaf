"""Pick the device and dtype a model runs with."""

from __future__ import annotations

import logging

import torch

from encoder.types import Device, DType

__all__ = ["cpu_supports_bf16", "resolve_device", "resolve_dtype"]

log = logging.getLogger(__name__)


def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    probe = getattr(torch.backends.cpu, "get_cpu_capability", None)
    capability = probe() if probe else ""
    checker = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(checker and checker()) or "AMX" in str(capability)


def resolve_device(device: Device) -> torch.device:
    """auto -> CUDA when available, else CPU."""
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def resolve_dtype(dtype: DType, device: torch.device) -> torch.dtype:
    """auto -> fp32 on CPU, bf16 (or fp16) on CUDA. bf16 on a CPU without it works but is slow: warn."""
    if dtype == "float32":
        return torch.float32
    if dtype == "float16":
        return torch.float16
    if dtype == "bfloat16":
        if device.type == "cpu" and not cpu_supports_bf16():
            log.warning("dtype=bfloat16 on a CPU without native bf16: expect it to be slower than float32")
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32
