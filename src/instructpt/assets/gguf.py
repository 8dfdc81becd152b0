"""GGUF -> a `save_pretrained` folder that every engine, trainer and lm-eval loads unchanged.

transformers reads GGUF files itself (`from_pretrained(dir, gguf_file=...)`,
with the `gguf` package) and dequantizes the weights to fp32: 4-bit weights come
back as the floats they stand for, so they differ slightly from the original
release. What it loads is still marked as a quantized model; dropping the
quantizer (`hf_quantizer`, `config.quantization_config`) before
`save_pretrained` writes a plain safetensors checkpoint instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from instructpt.assets.errors import AssetError
from instructpt.errors import InputError

GGUF_MAGIC = b"GGUF"

#: Names llama.cpp writes in `general.architecture` for what transformers calls otherwise.
_ARCH_ALIASES = {
    "qwen2moe": "qwen2_moe",
    "qwen3moe": "qwen3_moe",
    "gpt-oss": "gpt_oss",
    "minimax-m2": "minimax_m2",
    "t5encoder": "t5",
}


class UnsupportedGGUFError(InputError):
    """The GGUF's architecture is one transformers cannot load."""


def _import_gguf() -> Any:
    try:
        import gguf
    except ImportError as exc:
        raise InputError("reading GGUF files needs the `gguf` package: pip install gguf") from exc
    return gguf


def gguf_architecture(path: Path) -> str:
    """`general.architecture` of a GGUF file; an InputError when it is not a GGUF."""
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise InputError(f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF')")
    gguf = _import_gguf()
    try:
        reader = gguf.GGUFReader(str(path))
        field = reader.fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    except (KeyError, ValueError, IndexError) as exc:
        raise InputError(f"{path} is a damaged or truncated GGUF file: {exc}") from exc


def supported_architectures() -> list[str]:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return sorted(a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer"))


def _unsupported(path: Path, arch: str) -> UnsupportedGGUFError:
    import transformers

    return UnsupportedGGUFError(
        f"{path.name} holds a '{arch}' model, which transformers {transformers.__version__} "
        f"cannot load from GGUF (it loads: {', '.join(supported_architectures())}). Use a "
        "newer transformers, or the original (non-GGUF) checkpoint"
    )


def check_supported(path: Path) -> str:
    """The file's architecture, or an UnsupportedGGUFError before anything heavy loads."""
    arch = gguf_architecture(path)
    supported = supported_architectures()
    if arch not in supported and _ARCH_ALIASES.get(arch, arch.replace("-", "_")) not in supported:
        raise _unsupported(path, arch)
    return arch


def convert_into(gguf_file: Path, folder: Path) -> dict[str, Any]:
    """Load `gguf_file` with transformers and `save_pretrained` model + tokenizer into `folder`."""
    gguf_file = Path(gguf_file)
    arch = check_supported(gguf_file)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where, name = str(gguf_file.parent), gguf_file.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(where, gguf_file=name)
    except ValueError as exc:
        if "not supported" in str(exc):
            raise _unsupported(gguf_file, arch) from exc
        raise InputError(f"transformers cannot load {gguf_file}: {exc}") from exc
    # A plain checkpoint, not a "quantized" one: the weights are already dequantized floats.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and (tokenizer.model_max_length or 0) > 10**9:
        tokenizer.model_max_length = int(limit)  # GGUF carries no limit; the sentinel misleads
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {
        "architecture": arch,
        "model_class": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "gguf": gguf_file.name,
    }


def convert_gguf(
    gguf_file: str | os.PathLike[str], out_dir: str | os.PathLike[str]
) -> dict[str, Any]:
    """Convert any GGUF a user has into a new save_pretrained folder `out_dir`.

    Written to a temporary sibling and renamed into place, so `out_dir` is either
    complete or absent; an existing non-empty `out_dir` is an error.
    """
    src, out = Path(gguf_file).expanduser(), Path(out_dir).expanduser()
    if not src.is_file():
        raise InputError(f"GGUF file not found: {src}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} already exists and is not empty: choose a new folder")
    check_supported(src)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        info = convert_into(src, tmp)
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def assemble_chunks(parts: Sequence[Path], out: Path, sha256: str, name: str) -> Path:
    """Concatenate chunk files in order into `out` and check the whole file's sha256."""
    if not parts:
        raise AssetError(f"no chunk files to assemble into {out.name}")
    digest = hashlib.sha256()
    with out.open("wb") as dst:
        for part in parts:
            with part.open("rb") as src:
                for block in iter(lambda: src.read(1 << 20), b""):
                    digest.update(block)
                    dst.write(block)
            part.unlink()  # halve the peak disk use
    if digest.hexdigest() != sha256:
        out.unlink()
        raise AssetError(
            f"sha256 mismatch for the assembled {out.name}: expected {sha256}, got "
            f"{digest.hexdigest()}; a chunk is corrupt. Rerun `instructpt assets get {name}`"
        )
    return out
