"""The hf engine's stop strings, full-distribution sampling and seeds, on a tiny chat model
that recites whole sentences (so a stop string has real text to land in)."""

from __future__ import annotations

import pytest

from instructpt.synth.config import HFEngineConfig
from instructpt.synth.engines.base import DecodingParams, Prompt
from instructpt.synth.engines.hf import HFEngine
from tests.magpie.tiny_chat import build_chat_model, one_torch_thread

pytestmark = pytest.mark.timeout(120)

QUESTION = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhere was Ada Brook born?"
    "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
)
ANSWER = "Ada Brook was born in Lowmere."


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> HFEngine:
    with one_torch_thread():
        model = build_chat_model(tmp_path_factory.mktemp("chat") / "model", "llama3", steps=120)
    return HFEngine(str(model), None, HFEngineConfig(device="cpu", batch_size=4))


def encode(engine: HFEngine, text: str, seed: int | None = None) -> Prompt:
    ids = engine.tokenizer(text, add_special_tokens=False)["input_ids"]
    return Prompt(text, tuple(ids), seed)


def pieces(engine: HFEngine, text: str) -> list[str]:
    return [engine.tokenizer.decode([i]) for i in encode(engine, text).token_ids]


def test_the_model_recites_its_answer_greedily(engine):
    full = engine.generate([encode(engine, QUESTION)], DecodingParams(max_new_tokens=30))[0]
    assert (full.text, full.finish_reason) == (ANSWER, "stop")  # ended by EOS (<|eot_id|>)


def test_a_stop_string_spanning_two_tokens_cuts_the_text_before_it(engine):
    assert pieces(engine, ANSWER)[4:7] == [" i", "n", " L"]  # "n L" spans "n" and " L"
    params = DecodingParams(max_new_tokens=30, stop=("n L",))
    got = engine.generate([encode(engine, QUESTION)], params)[0]
    assert got.text == "Ada Brook was born i"  # cut before the stop, stop not included
    assert got.finish_reason == "stop"
    # generation ended at the token that completed the stop: "Ada ... i", "n", " L"
    assert got.completion_tokens == 7


def test_the_earliest_of_several_stops_wins_and_a_missing_one_changes_nothing(engine):
    params = DecodingParams(max_new_tokens=30, stop=("Lowmere", "zzz", " was"))
    got = engine.generate([encode(engine, QUESTION)], params)[0]
    assert (got.text, got.finish_reason) == ("Ada Brook", "stop")
    params = DecodingParams(max_new_tokens=30, stop=("zzz",))
    got = engine.generate([encode(engine, QUESTION)], params)[0]
    assert (got.text, got.finish_reason) == (ANSWER, "stop")


def test_a_stop_string_inside_one_token_ends_there_and_cuts_inside_the_token(engine):
    assert pieces(engine, ANSWER)[7] == "owmere"
    got = engine.generate([encode(engine, QUESTION)], DecodingParams(30, stop=("wme",)))[0]
    assert (got.text, got.finish_reason) == ("Ada Brook was born in Lo", "stop")
    assert got.completion_tokens == 8  # up to "owmere", not on to "." and EOS


def test_a_row_that_stops_early_leaves_the_other_rows_of_its_batch_as_they_were(engine):
    other = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
    batch = [encode(engine, QUESTION), encode(engine, other)]
    plain = engine.generate(batch, DecodingParams(max_new_tokens=30))
    stopped = engine.generate(batch, DecodingParams(max_new_tokens=30, stop=(" born",)))
    assert stopped[0].text == "Ada Brook was"
    assert stopped[1] == plain[1]


def test_a_stop_string_is_matched_in_the_generated_text_only(engine):
    # The prompt ends in "\n\n"; a stop "\n\nAda" would be completed by the first
    # generated token if the prompt counted. No other engine stops there.
    got = engine.generate([encode(engine, QUESTION)], DecodingParams(stop=("\n\nAda",)))[0]
    assert (got.text, got.finish_reason) == (ANSWER, "stop")


def test_sampling_uses_the_full_distribution_not_top_k_50(engine, monkeypatch):
    seen: dict = {}
    generate = engine.lm.generate

    def spy(**kwargs):
        seen.update(kwargs)
        return generate(**kwargs)

    monkeypatch.setattr(engine.lm, "generate", spy)
    engine.generate([encode(engine, QUESTION)], DecodingParams(8, temperature=1.0, seed=1))
    assert seen["do_sample"] is True and seen["top_k"] == 0
    seen.clear()
    engine.generate([encode(engine, QUESTION)], DecodingParams(8))
    assert seen["do_sample"] is False and "top_k" not in seen


def test_top_k_zero_disables_transformers_top_k_even_when_the_model_sets_one(engine, monkeypatch):
    from transformers import TopKLogitsWarper

    def top_k_warpers(**kwargs) -> list[int]:
        config, _ = engine.lm._prepare_generation_config(None, do_sample=True, **kwargs)
        processors = engine.lm._get_logits_processor(config, input_ids_seq_length=4)
        return [p.top_k for p in processors if isinstance(p, TopKLogitsWarper)]

    assert top_k_warpers() == [50]  # transformers' default, without top_k
    assert top_k_warpers(top_k=0) == []
    monkeypatch.setattr(engine.lm.generation_config, "top_k", 7)  # a model's own setting
    assert top_k_warpers() == [7]
    assert top_k_warpers(top_k=0) == []


def test_hf_samples_a_batch_from_the_calls_seed_and_ignores_per_prompt_seeds(engine):
    prefix = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
    params = DecodingParams(max_new_tokens=16, temperature=1.0, seed=3)
    plain = engine.generate([encode(engine, prefix)] * 4, params)
    own = engine.generate([encode(engine, prefix, seed=100 + i) for i in range(4)], params)
    assert own == plain
