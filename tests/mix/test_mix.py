"""The mix stage: the paper's recipes, exact token ratios, equal budgets, determinism, lineage."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from instructpt.core.config import build_config
from instructpt.core.shards import read_shard
from instructpt.core.tokenizers import load_tokenizer_spec
from instructpt.errors import ConfigError, InputError
from instructpt.mix.config import MixConfig
from instructpt.mix.stage import mix, read_mix
from tests.conftest import tree_bytes


def _cfg(inputs, recipe: str, **kw) -> MixConfig:
    base = {
        "recipe": recipe,
        "tokenizer": str(inputs["tokenizer"]),
        "corpus": str(inputs["corpus"]),
        "num_shards": 3,
        "progress": False,
    }
    if recipe in ("instruct", "domain"):
        base["cooked"] = str(inputs["cooked"])
    if recipe in ("mix", "domain"):
        base["general"] = [str(inputs["general"])]
    return MixConfig(**{**base, **kw})


def _count_tokens(inputs, records) -> Counter:
    """Tokens per source, counted independently of the stage (BOS + text + EOS)."""
    spec = load_tokenizer_spec(inputs["tokenizer"])
    backend = spec.backend()
    counts: Counter = Counter()
    for rec in records:
        ids = backend.encode(rec["text"], add_special_tokens=False).ids
        counts[rec["source"]] += len(ids) + spec.num_frame_tokens
    return counts


def _corpus_docs(inputs) -> dict[str, str]:
    docs = {}
    for path in sorted(inputs["corpus"].glob("shard-*.jsonl.zst")):
        docs.update({d["id"]: d["text"] for d in read_shard(path)})
    return docs


def test_vanilla_is_every_document_once_as_raw_text(inputs, tmp_path):
    mix(_cfg(inputs, "vanilla"), tmp_path / "v")
    out = list(read_mix(tmp_path / "v"))
    docs = _corpus_docs(inputs)
    assert {r["source"] for r in out} == {"raw"}
    assert sorted(r["id"] for r in out) == sorted(docs)
    assert all(r["lineage"] == [r["id"]] and r["text"] == docs[r["id"]] for r in out)
    # seeded shuffle: not the input order
    assert [r["id"] for r in out] != sorted(docs, key=lambda i: int(i.split("-")[1]))


def test_instruct_augments_the_chosen_fraction_of_documents_and_keeps_the_rest_raw(
    inputs, tmp_path
):
    manifest = mix(_cfg(inputs, "instruct", augment_doc_fraction=0.3), tmp_path / "i")
    out = list(read_mix(tmp_path / "i"))
    docs = _corpus_docs(inputs)
    covered = Counter(d for r in out for d in r["lineage"])
    # every document appears exactly once: as itself or inside one cooked text
    assert set(covered) == set(docs) and set(covered.values()) == {1}
    augmented = sum(len(r["lineage"]) for r in out if r["source"] == "instruct")
    assert augmented == manifest.stats["augmented_docs"]
    assert abs(augmented / len(docs) - 0.3) <= 1 / len(docs) * 2  # chains cover 2 docs
    assert all(r["template"] == ["qa-plain-001"] for r in out if r["source"] == "instruct")


@pytest.mark.parametrize(("recipe", "share"), [("domain", None), ("mix", 0.25)])
def test_general_share_is_exact_in_tokens_within_half_a_percent(inputs, tmp_path, recipe, share):
    manifest = mix(_cfg(inputs, recipe, general_token_share=share), tmp_path / recipe)
    counts = _count_tokens(inputs, read_mix(tmp_path / recipe))
    target = 0.5 if share is None else share
    achieved = counts["general"] / sum(counts.values())
    assert abs(achieved - target) <= 0.005 * target
    assert manifest.stats["tokens"] == sum(counts.values())
    assert manifest.stats["tokens_general"] == counts["general"]
    if recipe == "domain":  # all augmented: every cooked record, no raw document it covers
        assert manifest.stats["augmented_doc_fraction"] > 0.99


def test_token_budget_is_met_within_one_short_record(inputs, tmp_path):
    manifest = mix(_cfg(inputs, "instruct", num_tokens=15_000), tmp_path / "b")
    counts = _count_tokens(inputs, read_mix(tmp_path / "b"))
    assert 15_000 - 20 <= sum(counts.values()) <= 15_000
    assert manifest.stats["tokens"] == sum(counts.values())


def test_budget_beyond_the_inputs_fails_before_writing(inputs, tmp_path):
    with pytest.raises(InputError, match="num_tokens"):
        mix(_cfg(inputs, "vanilla", num_tokens=10**9), tmp_path / "x")
    assert not list((tmp_path / "x").glob("shard-*"))


def test_mix_twice_gives_the_same_bytes(inputs, tmp_path):
    for name in ("a", "b"):
        mix(_cfg(inputs, "domain", num_tokens=12_000, seed=3), tmp_path / name)
    for pattern in ("shard-*", "parquet/*.parquet"):
        a, b = tree_bytes(tmp_path / "a", pattern), tree_bytes(tmp_path / "b", pattern)
        assert a and a == b
    assert (tmp_path / "a/_manifest.json").read_bytes() == (
        tmp_path / "b/_manifest.json"
    ).read_bytes()


def test_another_seed_gives_another_order(inputs, tmp_path):
    mix(_cfg(inputs, "vanilla", seed=1), tmp_path / "s1")
    mix(_cfg(inputs, "vanilla", seed=2), tmp_path / "s2")
    ids1 = [r["id"] for r in read_mix(tmp_path / "s1")]
    ids2 = [r["id"] for r in read_mix(tmp_path / "s2")]
    assert sorted(ids1) == sorted(ids2) and ids1 != ids2


def test_lineage_resolves_back_to_input_ids(inputs, tmp_path):
    mix(_cfg(inputs, "domain"), tmp_path / "d")
    docs = _corpus_docs(inputs)
    cooked = {}
    for path in sorted(inputs["cooked"].glob("shard-*.jsonl.zst")):
        cooked.update({c["id"]: c for c in read_shard(path)})
    general = {g["id"]: g for g in map(json.loads, inputs["general"].read_text().splitlines())}
    for rec in read_mix(tmp_path / "d"):
        if rec["source"] == "instruct":
            assert rec["lineage"] == cooked[rec["id"]]["lineage"]
            assert all(d in docs for d in rec["lineage"])
        elif rec["source"] == "general":
            g = general[rec["lineage"][0]]
            assert rec["text"] == f"{g['question']} {g['response']}"
        else:
            assert rec["text"] == docs[rec["lineage"][0]]


def test_parallel_encoding_gives_the_same_bytes(inputs, tmp_path):
    mix(_cfg(inputs, "mix", num_workers=1), tmp_path / "one")
    mix(_cfg(inputs, "mix", num_workers=2), tmp_path / "two")
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two")


def test_parquet_export_loads_with_datasets(inputs, tmp_path):
    import datasets

    mix(_cfg(inputs, "instruct"), tmp_path / "p")
    ds = datasets.load_dataset(
        "parquet",
        data_files=str(tmp_path / "p/parquet/*.parquet"),
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )
    assert ds.column_names == ["id", "text", "source", "lineage"]
    assert ds["id"] == [r["id"] for r in read_mix(tmp_path / "p")]


def test_recipe_without_its_inputs_is_refused_at_load_time(inputs):
    with pytest.raises(ConfigError, match="needs `cooked`"):
        build_config(MixConfig, {"recipe": "instruct", "tokenizer": "t", "corpus": "c"})
    with pytest.raises(ConfigError, match="needs `general`"):
        build_config(MixConfig, {"recipe": "mix", "tokenizer": "t", "corpus": "c"})


def test_changed_config_refuses_to_resume(inputs, tmp_path):
    from instructpt.errors import ResumeError

    mix(_cfg(inputs, "vanilla", seed=1), tmp_path / "r")
    with pytest.raises(ResumeError, match="seed"):
        mix(_cfg(inputs, "vanilla", seed=2), tmp_path / "r")


def test_interrupted_mix_resumes_to_identical_bytes(inputs, tmp_path, monkeypatch):
    import instructpt.mix.stage as stage

    mix(_cfg(inputs, "domain"), tmp_path / "ref")
    real, calls = stage.write_parquet, []

    def dies_on_second_shard(path, records):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill mid-stage
        return real(path, records)

    monkeypatch.setattr(stage, "write_parquet", dies_on_second_shard)
    with pytest.raises(KeyboardInterrupt):
        mix(_cfg(inputs, "domain"), tmp_path / "out")
    monkeypatch.setattr(stage, "write_parquet", real)
    mix(_cfg(inputs, "domain"), tmp_path / "out")
    for pattern in ("shard-*", "parquet/*.parquet", "_manifest.json", "stats.json"):
        assert tree_bytes(tmp_path / "out", pattern) == tree_bytes(tmp_path / "ref", pattern)
