"""Magpie's template presets: exact prefixes, stops, cuts, and agreement with real templates."""

from __future__ import annotations

import pytest

from instructpt.errors import ConfigError
from instructpt.magpie.templates import (
    PRESETS,
    check_prefix,
    from_tokenizer,
    response_prompt,
    template_from_config,
)
from instructpt.synth.engines.base import cut_at_stop
from tests.magpie.tiny_chat import build_chat_tokenizer

EXPECTED_PREFIX = {
    "llama3": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n",
    "qwen2": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n",
    "phi3": "<s><|user|>\n",
    "gemma2": "<bos><start_of_turn>user\n",
    "mistral": "<s>[INST] ",
}
EXPECTED_RESPONSE = {
    "llama3": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "qwen2": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi?"
    "<|im_end|>\n<|im_start|>assistant\n",
    "phi3": "<s><|user|>\nHi?<|end|>\n<|assistant|>\n",
    "gemma2": "<bos><start_of_turn>user\nHi?<end_of_turn>\n<start_of_turn>model\n",
    "mistral": "<s>[INST] Hi? [/INST]",
}
EXPECTED_END_OF_TURN = {
    "llama3": "<|eot_id|>",
    "qwen2": "<|im_end|>",
    "phi3": "<|end|>",
    "gemma2": "<end_of_turn>",
    "mistral": "[/INST]",
}


@pytest.fixture(scope="module")
def llama3_tokenizer():
    return build_chat_tokenizer("llama3")


@pytest.fixture(scope="module")
def chatml_tokenizer():
    return build_chat_tokenizer("chatml")


class _NoTemplate:
    chat_template = None


def test_every_family_has_a_preset():
    assert set(PRESETS) == set(EXPECTED_PREFIX)


@pytest.mark.parametrize("name", sorted(EXPECTED_PREFIX))
def test_preset_prefix_is_the_exact_start_of_a_user_turn(name):
    assert template_from_config(name).prefix == EXPECTED_PREFIX[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_RESPONSE))
def test_preset_response_prompt_without_a_chat_template(name):
    template = template_from_config(name)
    assert response_prompt(template, _NoTemplate(), "Hi?", use_chat=True) == EXPECTED_RESPONSE[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_END_OF_TURN))
def test_the_end_of_turn_marker_is_the_first_query_stop(name):
    assert template_from_config(name).query_stops()[0] == EXPECTED_END_OF_TURN[name]


def test_response_format_starts_with_the_prefix_for_every_preset():
    for template in PRESETS.values():
        assert template.response_format.startswith(template.prefix)


@pytest.mark.parametrize(("name", "family"), [("llama3", "llama3"), ("qwen2", "chatml")])
def test_preset_prefix_equals_the_start_of_the_real_chat_template(name, family, request):
    tokenizer = request.getfixturevalue(f"{family}_tokenizer")
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is Varn?"}], tokenize=False
    )
    prefix = PRESETS[name].prefix
    assert rendered.startswith(prefix)
    assert rendered[len(prefix) :].startswith("What is Varn?" + EXPECTED_END_OF_TURN[name])
    assert check_prefix(PRESETS[name], tokenizer) is None


@pytest.mark.parametrize(("name", "family"), [("llama3", "llama3"), ("qwen2", "chatml")])
def test_preset_response_prompt_equals_the_real_generation_prompt(name, family, request):
    tokenizer = request.getfixturevalue(f"{family}_tokenizer")
    via_template = response_prompt(PRESETS[name], tokenizer, "Hi?", use_chat=True)
    via_preset = response_prompt(PRESETS[name], tokenizer, "Hi?", use_chat=False)
    assert via_template == via_preset == EXPECTED_RESPONSE[name]


def test_a_preset_of_another_family_is_refused_naming_both_prefixes(chatml_tokenizer):
    problem = check_prefix(PRESETS["llama3"], chatml_tokenizer)
    assert "<|im_start|>system" in problem and "<|begin_of_text|>" in problem
    assert "template: auto" in problem


@pytest.mark.parametrize(("family", "preset"), [("llama3", "llama3"), ("chatml", "qwen2")])
def test_auto_reads_prefix_and_end_of_turn_off_the_tokenizer(family, preset, request):
    tokenizer = request.getfixturevalue(f"{family}_tokenizer")
    auto = from_tokenizer(tokenizer)
    assert auto.prefix == PRESETS[preset].prefix
    assert auto.stop[0] == EXPECTED_END_OF_TURN[preset]
    assert tokenizer.eos_token in auto.stop
    # what the assistant and user headers leave when special tokens are skipped
    assert auto.decoded_stop == PRESETS[preset].decoded_stop
    assert auto.decoded_response_stop == PRESETS[preset].decoded_response_stop


def test_auto_on_the_qa_template_of_sft_opens_a_question_and_stops_at_the_answer():
    from instructpt.train.sft_data import QA_CHAT_TEMPLATE

    tokenizer = build_chat_tokenizer("llama3")
    tokenizer.chat_template = QA_CHAT_TEMPLATE
    auto = from_tokenizer(tokenizer)
    assert auto.prefix == "<|begin_of_text|>Question: "
    assert auto.stop == ("Answer:", "<|eot_id|>")
    assert auto.query_stops() == ("Answer:", "<|eot_id|>", "\nAnswer:")
    assert auto.response_stops() == ("Answer:", "<|eot_id|>", "\nQuestion: ")
    generated = "Where was Ada Brook born?\nAnswer: In Lowmere."
    assert cut_at_stop(generated, auto.query_stops()) == ("Where was Ada Brook born?", True)
    prompt = response_prompt(auto, tokenizer, "Where was Ada Brook born?", use_chat=True)
    assert prompt == "<|begin_of_text|>Question: Where was Ada Brook born?\nAnswer:"


def test_auto_without_a_chat_template_names_the_presets():
    with pytest.raises(ConfigError, match="llama3, qwen2, phi3, gemma2, mistral"):
        from_tokenizer(_NoTemplate())


def test_custom_template_uses_the_given_prefix_and_stops():
    custom = template_from_config("custom", "### User:\n", ("### Assistant:",))
    assert custom.prefix == "### User:\n"
    assert custom.query_stops() == ("### Assistant:",)
    with pytest.raises(ConfigError, match="needs `prefix`"):
        template_from_config("custom")


def test_extra_stops_are_added_to_a_preset():
    template = template_from_config("mistral", stop=("\n\n",))
    assert template.stop == ("[/INST]", "[INST]", "</s>", "\n\n")


def test_unknown_template_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'llama3'"):
        template_from_config("llama-3")


# --------------------------------------------------------------------------- cuts


def test_cut_at_the_earliest_stop_string():
    stops = PRESETS["llama3"].query_stops()
    text = "Where is Varn?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nIn Ostland."
    assert cut_at_stop(text, stops) == ("Where is Varn?", True)


def test_cut_finds_the_assistant_header_left_after_special_tokens_were_skipped():
    # The hf and vllm engines decode with skip_special_tokens=True.
    text = "Where is Varn?assistant\n\nIn Ostland."
    assert cut_at_stop(text, PRESETS["llama3"].query_stops()) == ("Where is Varn?", True)
    chatml = "Where is Varn?\nassistant\nIn Ostland."
    assert cut_at_stop(chatml, PRESETS["qwen2"].query_stops()) == ("Where is Varn?", True)


def test_text_without_a_stop_is_kept_whole_and_reported_unended():
    assert cut_at_stop("Where is Varn", ("<|eot_id|>",)) == ("Where is Varn", False)


def test_mistral_turn_end_with_or_without_space_cuts_to_the_same_query():
    stops = PRESETS["mistral"].query_stops()
    assert cut_at_stop("Where is Varn? [/INST] It is", stops)[0].strip() == "Where is Varn?"
    assert cut_at_stop("Where is Varn?[/INST] It is", stops)[0] == "Where is Varn?"
