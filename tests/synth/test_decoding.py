"""Decoding params as the replay cache sees them, the engines' common stop-string cut, and
what the vllm engine hands to vLLM (per-request seeds and stops) through a stand-in `vllm`."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any

import pytest

from instructpt.synth.cache import request_key
from instructpt.synth.config import VLLMEngineConfig
from instructpt.synth.engines.base import DecodingParams, Prompt, cut_at_stop

# --------------------------------------------------------------------------- params and keys


def test_params_without_stops_give_the_replay_keys_they_always_had():
    # Literals computed with the code before stop strings existed: every cached
    # request (all of synthesize's) must still be found.
    assert DecodingParams(64, 0.7, 0.9, 5).as_dict() == {
        "max_new_tokens": 64,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 5,
    }
    key = request_key({"decoding": DecodingParams().as_dict()}, (1, 2, 3))
    assert key == "b295c4b209c34852776cdbb84b01559b5279d7c1959ef55df1cae19e68f191f3"
    key = request_key({"name": "hf", "decoding": DecodingParams(64, 0.7, 0.9, 5).as_dict()}, (7, 8))
    assert key == "db85cdfdc4e96b0be0fe24123c6719b5dd57c6c4739a79c18aea8761bd1aca3c"


def test_stop_strings_are_part_of_the_key_only_when_given():
    with_stop = DecodingParams(stop=["</END>"])  # a list is kept as a tuple: params stay hashable
    assert with_stop.stop == ("</END>",) and hash(with_stop)
    assert with_stop.as_dict()["stop"] == ["</END>"]
    plain = request_key({"decoding": DecodingParams().as_dict()}, (1,))
    assert request_key({"decoding": with_stop.as_dict()}, (1,)) != plain


def test_an_empty_stop_string_is_refused():
    with pytest.raises(ValueError, match="must not be empty"):
        DecodingParams(stop=("</END>", ""))


def test_a_prompt_brings_its_own_seed_or_takes_the_calls():
    params = DecodingParams(seed=7)
    assert params.seed_for(Prompt("a", (1,))) == 7
    assert params.seed_for(Prompt("a", (1,), seed=0)) == 0


def test_text_is_cut_before_the_earliest_stop_string():
    assert cut_at_stop("q? <ANS> a </END>", ("</END>", "<ANS>")) == ("q? ", True)
    assert cut_at_stop("q? a", ("</END>",)) == ("q? a", False)
    assert cut_at_stop("q? a", ()) == ("q? a", False)


# --------------------------------------------------------------------------- vllm requests


@dataclass
class _SamplingParams:
    """vLLM's `SamplingParams`, keeping what it was given."""

    temperature: float
    top_p: float
    seed: int | None
    max_tokens: int
    stop: list[str] | None
    detokenize: bool
    skip_special_tokens: bool


class _LLM:
    """vLLM's `LLM`, recording each call: generates the prompt's own ids again, then
    " <ANS> a </END>", one id per character, and reports running out of tokens."""

    def __init__(self, **kwargs: Any) -> None:
        self.calls: list[tuple[list[dict], Any]] = []

    def get_tokenizer(self) -> Any:
        return _CharTokenizer()

    def generate(self, inputs: list[dict], sampling: Any, use_tqdm: bool) -> list[Any]:
        self.calls.append((inputs, sampling))
        outputs = []
        for prompt in inputs:
            ids = prompt["prompt_token_ids"] + [ord(c) for c in " <ANS> a </END>"]
            first = types.SimpleNamespace(token_ids=ids, finish_reason="length")
            outputs.append(
                types.SimpleNamespace(prompt_token_ids=prompt["prompt_token_ids"], outputs=[first])
            )
        return outputs


class _CharTokenizer:
    def decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        return "".join(map(chr, ids))


@pytest.fixture
def vllm_engine(monkeypatch):
    """A `VLLMEngine` built over a stand-in `vllm` package (the real one is not installed
    in the main environment; tests/synth/test_vllm_engine.py runs it where it is)."""
    vllm = types.ModuleType("vllm")
    vllm.LLM = _LLM
    vllm.SamplingParams = _SamplingParams
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = dict
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = types.SimpleNamespace(is_cpu=lambda: True)
    for name, module in {"vllm": vllm, "vllm.inputs": inputs, "vllm.platforms": platforms}.items():
        monkeypatch.setitem(sys.modules, name, module)
    from instructpt.synth.engines.vllm import VLLMEngine

    return VLLMEngine("tiny", None, VLLMEngineConfig(), max_context=512)


def chars(text: str, seed: int | None = None) -> Prompt:
    return Prompt(text, tuple(map(ord, text)), seed)


def test_vllm_gets_one_sampling_params_per_prompt_with_its_own_seed(vllm_engine):
    prompts = [chars("q0", seed=11), chars("q1"), chars("q2", seed=13)]
    vllm_engine.generate(prompts, DecodingParams(16, temperature=1.0, seed=7))
    (_, sampling), *_ = vllm_engine._llm.calls
    assert [s.seed for s in sampling] == [11, 7, 13]
    assert all(s.temperature == 1.0 and s.max_tokens == 16 for s in sampling)
    # without stop strings vLLM need not detokenize (we decode the ids ourselves)
    assert {(s.stop, s.detokenize) for s in sampling} == {(None, False)}


def test_vllm_greedy_requests_carry_no_seed(vllm_engine):
    vllm_engine.generate([chars("q0", seed=11)], DecodingParams(16))
    assert vllm_engine._llm.calls[0][1][0].seed is None


def test_vllm_stops_are_sent_and_the_decoded_ids_are_cut_before_the_first(vllm_engine):
    params = DecodingParams(16, stop=("</END>", "<ANS>"))
    out = vllm_engine.generate([chars("q0"), chars("q1")], params)
    sampling = vllm_engine._llm.calls[0][1]
    # vLLM refuses stop strings without detokenize
    assert {(tuple(s.stop), s.detokenize) for s in sampling} == {(("</END>", "<ANS>"), True)}
    assert [(c.text, c.finish_reason) for c in out] == [("q0 ", "stop"), ("q1 ", "stop")]
