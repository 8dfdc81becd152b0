"""Chat-template presets for Magpie: where a user turn opens, where it ends, how to ask.

Magpie (Xu et al. 2024, section 2) prompts an aligned chat model with its
template *up to the start of a user turn* and nothing else; the model writes
a user query by itself, and the turn ends where the template would close it.

A preset holds, as literal text:
- `prefix`: the start of a conversation up to where the user's words begin,
  BOS included. Prompts are tokenized with `add_special_tokens=False`, so the
  BOS the model was trained with must be in the text (the same rule as the
  synthesizer format, see `synth/engines/base.py`).
- `stop`: strings that end the user turn. The engines decode with
  `skip_special_tokens=True`, so an end-of-turn marker that is a special
  token disappears from the text; `decoded_stop` holds what the *following*
  assistant header leaves behind once its special tokens are gone (Magpie's
  own release stops at the word "assistant" for the same reason,
  `stop_tokens_assistant` in its configs/model_configs.json).
- `response_format`: the prompt for the answer, used when the tokenizer has
  no chat template of its own (`{query}` is replaced).
- `template_tokens`: markers that must never appear in a kept instruction or
  response (a leaked marker means the turn was cut in the wrong place).

Sources checked for the strings (2026-11): the Jinja `chat_template` of each
family's tokenizer_config.json as copied in public code (Llama-3 Instruct:
`bos_token + '<|start_header_id|>' + role + '<|end_header_id|>\\n\\n' + content
| trim + '<|eot_id|>'`, generation prompt
`'<|start_header_id|>assistant<|end_header_id|>\\n\\n'`; Qwen2 Instruct:
default system `'<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n'`,
then `'<|im_start|>' + role + '\\n' + content + '<|im_end|>\\n'`, generation
prompt `'<|im_start|>assistant\\n'`; Phi-3 Instruct: `'<|user|>\\n' + content +
'<|end|>\\n'`, generation prompt `'<|assistant|>\\n'`, no BOS in the template but
the Llama sentencepiece tokenizer adds `<s>`; Gemma-2 it: `bos_token +
'<start_of_turn>' + role + '\\n' + content | trim + '<end_of_turn>\\n'`, with
role `model` for the assistant; Mistral Instruct v0.1-v0.2: `bos_token + '[INST]
' + content + ' [/INST]'`, v0.3 without the space before `[/INST]`), and
magpie-align/magpie configs/model_configs.json (`pre_query_template`,
`stop_tokens`). Where Magpie's release differs from the model's own template
we follow the template: Magpie used `<|im_start|>user\\n` with no system turn
for Qwen2, `<bos><start_of_turn>user\\n\\n` (one newline more) for Gemma-2 and
`<s> <|user|>\\n` for Phi-3.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import Any

from instructpt.errors import ConfigError

#: Version of the preset strings; recorded in every output record's meta.
TEMPLATES_VERSION = 1

#: Stand-in query used to find a chat template's prefix and response header.
_PROBE = "MAGPIEPROBEQUERY"


@dataclass(frozen=True)
class ChatTemplate:
    """How one model family opens, ends and answers a user turn (see module docstring)."""

    name: str
    prefix: str
    stop: tuple[str, ...]
    response_format: str | None = None  # with `{query}`; None: chat template required
    response_stop: tuple[str, ...] = ()
    decoded_stop: tuple[str, ...] = ()
    decoded_response_stop: tuple[str, ...] = ()
    template_tokens: tuple[str, ...] = field(default=())

    def query_stops(self) -> tuple[str, ...]:
        return _unique(self.stop + self.decoded_stop)

    def response_stops(self) -> tuple[str, ...]:
        return _unique((self.response_stop or self.stop) + self.decoded_response_stop)


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for s in items if s))


PRESETS: dict[str, ChatTemplate] = {
    "llama3": ChatTemplate(
        name="llama3",
        prefix="<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n",
        stop=("<|eot_id|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>"),
        response_format=(
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{query}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n"
        ),
        # <|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n with specials skipped
        decoded_stop=("assistant\n\n",),
        decoded_response_stop=("user\n\n",),
        template_tokens=(
            "<|begin_of_text|>",
            "<|eot_id|>",
            "<|end_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
        ),
    ),
    "qwen2": ChatTemplate(
        name="qwen2",
        prefix="<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n",
        stop=("<|im_end|>", "<|im_start|>", "<|endoftext|>"),
        response_format=(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\n{query}<|im_end|>\n<|im_start|>assistant\n"
        ),
        # <|im_end|>\n<|im_start|>assistant\n with specials skipped
        decoded_stop=("\nassistant\n",),
        decoded_response_stop=("\nuser\n",),
        template_tokens=("<|im_start|>", "<|im_end|>", "<|endoftext|>"),
    ),
    "phi3": ChatTemplate(
        name="phi3",
        prefix="<s><|user|>\n",
        stop=("<|end|>", "<|endoftext|>", "<|user|>", "<|assistant|>", "<|system|>", "</s>"),
        response_format="<s><|user|>\n{query}<|end|>\n<|assistant|>\n",
        template_tokens=("<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "<|endoftext|>"),
    ),
    "gemma2": ChatTemplate(
        name="gemma2",
        prefix="<bos><start_of_turn>user\n",
        stop=("<end_of_turn>", "<start_of_turn>", "<eos>"),
        response_format="<bos><start_of_turn>user\n{query}<end_of_turn>\n<start_of_turn>model\n",
        # <end_of_turn>\n<start_of_turn>model\n with specials skipped
        decoded_stop=("\nmodel\n",),
        decoded_response_stop=("\nuser\n",),
        template_tokens=("<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>"),
    ),
    "mistral": ChatTemplate(
        name="mistral",
        prefix="<s>[INST] ",
        # v0.1-v0.2 close the turn with " [/INST]", v0.3 with "[/INST]"; the cut strips spaces
        stop=("[/INST]", "[INST]", "</s>"),
        response_format="<s>[INST] {query} [/INST]",
        template_tokens=("[INST]", "[/INST]", "<s>", "</s>"),
    ),
}

#: What `template` may name: a preset, the model's own chat template, or a custom prefix.
TEMPLATE_CHOICES = (*PRESETS, "auto", "custom")


def template_from_config(
    name: str, prefix: str | None = None, stop: tuple[str, ...] = ()
) -> ChatTemplate | None:
    """The preset or custom template; None for `auto` (needs the tokenizer, see `from_tokenizer`).

    Extra `stop` strings are added to a preset's; for `custom` they are its stops.
    """
    if name == "auto":
        return None
    if name == "custom":
        if not prefix:
            raise ConfigError("template 'custom' needs `prefix` (the text that opens a user turn)")
        return ChatTemplate(name="custom", prefix=prefix, stop=tuple(stop))
    if name not in PRESETS:
        close = difflib.get_close_matches(name, TEMPLATE_CHOICES, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(
            f"unknown template '{name}'{hint}; choose one of {', '.join(TEMPLATE_CHOICES)}"
        )
    preset = PRESETS[name]
    if stop:
        preset = replace(preset, stop=_unique(preset.stop + tuple(stop)))
    return preset


# --------------------------------------------------------------------------- tokenizers


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_chat(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    """The tokenizer's chat template as text, with the BOS its encoder would add prepended.

    Prompts are tokenized with `add_special_tokens=False`; a tokenizer whose
    template leaves BOS to the encoder (Phi-3) would otherwise lose it.
    """
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt
    )
    bos = encoder_bos(tokenizer)
    if bos and not text.startswith(bos):
        text = bos + text
    return text


def encoder_bos(tokenizer: Any) -> str | None:
    """The BOS text that `tokenizer(text)` puts in front by itself, or None."""
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is None:
        return None
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return tokenizer.bos_token if ids and ids[0] == bos_id else None


def from_tokenizer(tokenizer: Any, extra_stop: tuple[str, ...] = ()) -> ChatTemplate:
    """Template `auto`: prefix, stops and response header read off the model's own template.

    The template is rendered around a probe query; what precedes it is the
    prefix, and the first marker after it (the text up to the first line
    break or whitespace, e.g. `<|im_end|>`, `[/INST]`) ends the turn.
    """
    if not has_chat_template(tokenizer):
        raise ConfigError(
            "template 'auto' needs a tokenizer with a chat template, and this one has none; "
            f"choose a preset ({', '.join(PRESETS)}) or template 'custom' with a prefix"
        )
    user = [{"role": "user", "content": _PROBE}]
    rendered = render_chat(tokenizer, user, generation_prompt=True)
    if _PROBE not in rendered:
        raise ConfigError("the tokenizer's chat template drops the user's message; use a preset")
    prefix, after = rendered.split(_PROBE, 1)
    stops: list[str] = []
    closing = after.strip()
    special = sorted(
        (t for t in _added_tokens(tokenizer) if t and closing.startswith(t)), key=len, reverse=True
    )
    if special:
        stops.append(special[0])
    if closing:
        stops.append(closing.split()[0])
    if tokenizer.eos_token:
        stops.append(tokenizer.eos_token)
    markers = tuple(t for t in _added_tokens(tokenizer) if t and (t in prefix or t in after))
    # What the turn ends leave behind once the engines skip special tokens (see the
    # module docstring): the assistant header after a query, the user header after
    # an answer.
    answered = [*user, {"role": "assistant", "content": _PROBE}, *user]
    between = render_chat(tokenizer, answered, generation_prompt=False).split(_PROBE)[2]
    return ChatTemplate(
        name="auto",
        prefix=prefix,
        stop=_unique(tuple(stops) + tuple(extra_stop)),
        decoded_stop=_decoded(after, tokenizer),
        decoded_response_stop=_decoded(between, tokenizer),
        template_tokens=markers,
    )


def _decoded(text: str, tokenizer: Any) -> tuple[str, ...]:
    """`text` without the tokenizer's special tokens, when that leaves a visible marker."""
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    for token in sorted(
        (str(t) for t in decoder.values() if getattr(t, "special", False)), key=len, reverse=True
    ):
        text = text.replace(token, "")
    return (text,) if text.strip() else ()


def _added_tokens(tokenizer: Any) -> list[str]:
    tokens = list(getattr(tokenizer, "all_special_tokens", []) or [])
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    tokens += [str(t) for t in decoder.values()]
    return list(dict.fromkeys(tokens))


def check_prefix(template: ChatTemplate, tokenizer: Any) -> str | None:
    """None when the tokenizer's own chat template opens a user turn with `template.prefix`;
    else a message saying how they differ. Tokenizers without a template pass."""
    if not has_chat_template(tokenizer) or template.name in ("auto", "custom"):
        return None
    user = [{"role": "user", "content": _PROBE}]
    rendered = render_chat(tokenizer, user, generation_prompt=False)
    own = rendered.split(_PROBE, 1)[0]
    if own == template.prefix:
        return None
    return (
        f"the model's own chat template opens a user turn with {own!r}, but preset "
        f"'{template.name}' uses {template.prefix!r}. Use template: auto (the model's own), "
        "a matching preset, or set check_template: false to use the preset anyway"
    )


# --------------------------------------------------------------------------- prompts and cuts


def response_prompt(template: ChatTemplate, tokenizer: Any, query: str, use_chat: bool) -> str:
    """The prompt that asks the model to answer `query`: its chat template when it has one."""
    if use_chat and has_chat_template(tokenizer):
        return render_chat(tokenizer, [{"role": "user", "content": query}], generation_prompt=True)
    if template.response_format is None:
        raise ConfigError(
            f"template '{template.name}' has no response format and the tokenizer no chat "
            "template: give the tokenizer a chat_template, or use a preset"
        )
    return template.response_format.replace("{query}", query)
