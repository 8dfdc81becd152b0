"""Torch devices and dtypes from config strings (`auto` picks CUDA when present)."""

from __future__ import annotations

from typing import Any

from instructpt.errors import InputError


def resolve_device(device: str) -> str:
    """`auto` is CUDA when torch sees a GPU, else CPU; asking for CUDA without one fails here."""
    import torch  # heavy: only when a device is really needed

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but torch sees no CUDA device")
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32  # bf16 matmuls are slower than fp32 on most CPUs (MACHINE.md)
    return getattr(torch, dtype)
