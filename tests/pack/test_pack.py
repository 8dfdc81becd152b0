"""Tokenizers, the tokenize stage and the packed-shard reader."""

from __future__ import annotations

import json

import numpy as np
import pytest

import instructpt.pack.tokenize as tokenize_mod
from instructpt.core.manifest import read_manifest
from instructpt.core.tokenizers import TokenizerSpec, frame_ids, load_tokenizer_spec, token_dtype
from instructpt.errors import ResumeError
from instructpt.mix.config import MixConfig
from instructpt.mix.stage import mix, read_mix
from instructpt.pack.config import TokenizeConfig, TokenizerTrainConfig
from instructpt.pack.reader import PackedTokens
from instructpt.pack.tokenize import tokenize
from instructpt.pack.tokenizer import train_tokenizer, train_tokenizer_stage
from tests.conftest import tree_bytes


@pytest.fixture(scope="module")
def mixed(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("mixed") / "mix"
    cfg = MixConfig(
        recipe="domain",
        tokenizer=str(inputs["tokenizer"]),
        corpus=str(inputs["corpus"]),
        cooked=str(inputs["cooked"]),
        general=[str(inputs["general"])],
        num_shards=4,
        progress=False,
    )
    mix(cfg, out)
    return out


def _tcfg(inputs, **kw) -> TokenizeConfig:
    return TokenizeConfig(
        **{"tokenizer": str(inputs["tokenizer"]), "seq_len": 64, "progress": False, **kw}
    )


def test_trained_tokenizer_loads_with_autotokenizer_and_round_trips(inputs, tmp_path):
    from transformers import AutoTokenizer

    cfg = TokenizerTrainConfig(
        input=[str(inputs["corpus"])], vocab_size=320, special_tokens=["<x>"]
    )
    out = train_tokenizer_stage(cfg, tmp_path / "tok")
    tok = AutoTokenizer.from_pretrained(out)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<s>", "</s>", "<pad>")
    assert len(tok) == 320 and tok.convert_tokens_to_ids("<x>") == 3
    text = "Entity 12 é0: ünïcode  spaces\tand\nnewlines 🙂"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert not list(tmp_path.glob(".tok.*"))  # no temp folder left behind


def test_token_dtype_is_uint16_while_ids_fit():
    assert token_dtype(400) == np.uint16
    assert token_dtype(65_536) == np.uint16
    assert token_dtype(65_537) == np.uint32


def test_frame_adds_bos_and_eos_around_each_document():
    spec = TokenizerSpec("x", 100, bos_id=1, eos_id=2, fingerprint="f")
    tokens, offsets = frame_ids(spec, np.array([5, 6, 7, 8, 9]), np.array([0, 2, 2, 5]))
    assert tokens.tolist() == [1, 5, 6, 2, 1, 2, 1, 7, 8, 9, 2]
    assert offsets.tolist() == [0, 4, 6, 11]


def test_same_bos_and_eos_token_is_written_once_after_each_document():
    # GPT-2 style: <|endoftext|> is both; two in a row between documents would be noise.
    spec = TokenizerSpec("x", 100, bos_id=0, eos_id=0, fingerprint="f")
    tokens, _ = frame_ids(spec, np.array([5, 6, 7]), np.array([0, 2, 3]))
    assert tokens.tolist() == [5, 6, 0, 7, 0]


def test_packed_shards_decode_back_to_the_exact_mixed_text(inputs, mixed, tmp_path):
    manifest = tokenize(_tcfg(inputs), mixed, tmp_path / "tok")
    packed = PackedTokens(tmp_path / "tok")
    backend = load_tokenizer_spec(inputs["tokenizer"]).backend()
    records = list(read_mix(mixed))
    spans = list(packed.iter_records())
    assert [rid for rid, _, _ in spans] == [r["id"] for r in records]
    for rec, (_, start, stop) in zip(records, spans, strict=True):
        toks = packed.tokens(start, stop)
        assert toks[0] == 1 and toks[-1] == 2  # BOS ... EOS
        assert backend.decode(toks[1:-1].tolist(), skip_special_tokens=False) == rec["text"]
    assert packed.dtype == np.uint16
    assert np.load(tmp_path / "tok/tokens-00000.npy").dtype == np.uint16
    assert manifest.stats["tokens"] == packed.num_tokens == spans[-1][2]
    assert manifest.stats["shards_from_mix_cache"] == 4


def test_cached_ids_and_re_encoding_give_identical_bytes(inputs, mixed, tmp_path):
    tokenize(_tcfg(inputs, use_mix_cache=True), mixed, tmp_path / "cache")
    m = tokenize(_tcfg(inputs, use_mix_cache=False, num_workers=2), mixed, tmp_path / "text")
    assert m.stats["shards_encoded"] == 4
    assert tree_bytes(tmp_path / "cache", "tokens-*") == tree_bytes(tmp_path / "text", "tokens-*")
    assert (tmp_path / "cache/index.json").read_bytes() == (
        tmp_path / "text/index.json"
    ).read_bytes()


def test_interrupted_tokenize_resumes_to_identical_bytes(inputs, mixed, tmp_path, monkeypatch):
    tokenize(_tcfg(inputs), mixed, tmp_path / "ref")
    real = tokenize_mod.pack_shard
    calls = []

    def dies_on_third_shard(task):
        calls.append(task)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a kill mid-stage
        return real(task)

    monkeypatch.setattr(tokenize_mod, "pack_shard", dies_on_third_shard)
    with pytest.raises(KeyboardInterrupt):
        tokenize(_tcfg(inputs), mixed, tmp_path / "out")
    assert not (tmp_path / "out/_manifest.json").exists()
    monkeypatch.setattr(tokenize_mod, "pack_shard", real)
    redone = []
    monkeypatch.setattr(tokenize_mod, "pack_shard", lambda t: redone.append(t) or real(t))
    tokenize(_tcfg(inputs), mixed, tmp_path / "out")
    assert len(redone) == 2  # the two finished shards were kept
    assert tree_bytes(tmp_path / "out", "tokens-*") == tree_bytes(tmp_path / "ref", "tokens-*")
    assert (tmp_path / "out/index.json").read_bytes() == (tmp_path / "ref/index.json").read_bytes()


def test_equal_budget_variants_pack_to_equal_sequences_within_one(inputs, tmp_path):
    base = {
        "tokenizer": str(inputs["tokenizer"]),
        "corpus": str(inputs["corpus"]),
        "progress": False,
    }
    vanilla = mix(MixConfig(recipe="vanilla", **base), tmp_path / "vanilla")
    budget = vanilla.stats["tokens"] - 500  # the smaller variant sets the budget
    lengths = {}
    for recipe, extra in (("vanilla", {}), ("instruct", {"cooked": str(inputs["cooked"])})):
        cfg = MixConfig(recipe=recipe, num_tokens=budget, **base, **extra)
        mix(cfg, tmp_path / f"{recipe}-b")
        tokenize(_tcfg(inputs), tmp_path / f"{recipe}-b", tmp_path / f"{recipe}-tok")
        packed = PackedTokens(tmp_path / f"{recipe}-tok")
        lengths[recipe] = (packed.num_tokens, packed.num_sequences)
    (tv, sv), (ti, si) = lengths["vanilla"], lengths["instruct"]
    assert abs(tv - ti) < 64 and abs(sv - si) <= 1 and ti <= budget


def test_reader_cuts_the_stream_into_fixed_sequences_deterministically(inputs, mixed, tmp_path):
    tokenize(_tcfg(inputs), mixed, tmp_path / "tok")
    packed = PackedTokens(tmp_path / "tok")
    stream = np.concatenate(
        [np.load(tmp_path / f"tok/tokens-{k:05d}.npy") for k in range(4)]
    ).astype(np.int64)
    seqs = list(packed.iter_sequences())
    assert len(seqs) == packed.num_sequences == len(stream) // 64
    assert all(s.shape == (64,) for s in seqs)
    assert np.array_equal(np.concatenate(seqs), stream[: len(seqs) * 64])
    shuffled = [s.tolist() for s in packed.iter_sequences(seed=5)]
    assert shuffled == [s.tolist() for s in packed.iter_sequences(seed=5)]
    assert shuffled != [s.tolist() for s in seqs]
    ranks = [set(packed.order(seed=5, rank=r, world_size=3).tolist()) for r in range(3)]
    assert set().union(*ranks) == set(range(len(seqs))) and sum(map(len, ranks)) == len(seqs)
    resumed = list(packed.iter_sequences(seed=5, start=7))
    assert [s.tolist() for s in resumed] == shuffled[7:]
    batch = next(packed.iter_batches(8, seed=5))
    assert batch.shape == (8, 64) and batch.dtype == np.int64
    # a sequence maps back to the records whose tokens it holds
    ids = packed.records_at(0, 64)
    assert ids[0] == next(iter(read_mix(mixed)))["id"]
    other = PackedTokens(tmp_path / "tok", seq_len=128)
    assert other.num_sequences == len(stream) // 128


def test_tokenizer_without_tokenizer_json_is_refused_with_a_fix(tmp_path):
    from instructpt.errors import InputError

    with pytest.raises(InputError, match=r"tokenizer\.json"):
        load_tokenizer_spec(tmp_path)


def test_unchanged_tokenizer_config_is_kept_and_a_changed_vocab_size_is_refused(inputs, tmp_path):
    # The bug this guards: `run` reused any folder holding tokenizer.json, whatever its
    # vocab_size, and every later stage silently used the old vocabulary.
    out = tmp_path / "tok"
    cfg = TokenizerTrainConfig(input=[str(inputs["corpus"])], vocab_size=320, min_frequency=1)
    train_tokenizer_stage(cfg, out)
    trained = (out / "tokenizer.json").stat().st_mtime_ns
    manifest = read_manifest(out)
    assert manifest.stage == "tokenizer" and manifest.stats["vocab_size"] == 320
    assert json.loads((out / "stats.json").read_text()) == manifest.stats

    train_tokenizer_stage(cfg, out)  # same config and input: nothing to do
    assert (out / "tokenizer.json").stat().st_mtime_ns == trained

    bigger = TokenizerTrainConfig(input=[str(inputs["corpus"])], vocab_size=400, min_frequency=1)
    with pytest.raises(ResumeError, match=r"vocab_size: 320 -> 400.*--overwrite"):
        train_tokenizer_stage(bigger, out)
    assert load_tokenizer_spec(out).vocab_size == 320  # refused before touching anything

    train_tokenizer_stage(bigger, out, overwrite=True)
    assert load_tokenizer_spec(out).vocab_size == 400
    assert read_manifest(out).config_hash == bigger.config_hash()


def test_tokenizer_folder_that_records_no_config_is_refused_then_retrained(inputs, tmp_path):
    # A folder written before tokenizer folders had a manifest: its vocab_size is unknown.
    out = train_tokenizer(["a b c d e f"] * 20, tmp_path / "tok", vocab_size=300)
    cfg = TokenizerTrainConfig(input=[str(inputs["corpus"])], vocab_size=320)
    with pytest.raises(ResumeError, match=r"does not record the config.*--overwrite"):
        train_tokenizer_stage(cfg, out)
    train_tokenizer_stage(cfg, out, overwrite=True)
    assert read_manifest(out).config_hash == cfg.config_hash()
    assert load_tokenizer_spec(out).vocab_size == 320
