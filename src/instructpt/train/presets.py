"""Named model shapes on Hugging Face model classes, so every checkpoint loads anywhere.

A preset fixes an architecture family and its dimensions; the vocabulary and
BOS/EOS ids come from the tokenizer at build time, and any dimension can be
overridden (`ModelSpec`). Models are plain `MistralForCausalLM`,
`LlamaForCausalLM` or `Gemma2ForCausalLM`, saved with `save_pretrained` in
safetensors: transformers, vLLM and lm-eval load them unchanged.

Paper-scale presets (InstructLM, Cheng et al. 2024, Mistral architecture,
vocabulary of the tokenizer used, 32k for Mistral's):
- `mistral-500m`: hidden 1280, 20 layers, 20 heads of 64 with 4 KV heads
  (GQA 5:1), MLP 4480. About 504M parameters with a 32k vocabulary (untied
  embeddings: 82M of them). Head size 64 and hidden a multiple of 256 keep
  flash/SDPA kernels and tensor cores on their fast paths; GQA cuts the KV
  cache 5x for the synthesis engines that later serve these models.
- `mistral-1.3b`: hidden 2048, 24 layers, 16 heads of 128 with 8 KV heads,
  MLP 5632 (the TinyLlama/Llama ratio of 2.75x). About 1.26B parameters with
  a 32k vocabulary.
Tiny presets (about 0.3M-30M parameters with a 4-8k vocabulary) are for tests, the
demo and CPU smoke runs; their sizes follow shared/MACHINE.md's measurements.

Gemma-2 options (`gemma2` family only, where transformers implements them):
grouped-query attention (`num_kv_heads`), sliding-window attention on
alternating layers (`sliding_window`; layer 0, 2, ... slide, 1, 3, ... are
global, as in Gemma 2), and soft-capping of attention logits and final
logits (`attn_logit_softcapping`, `final_logit_softcapping`; cap * tanh(x / cap);
0 turns a preset's cap off).
Gemma 2 runs with eager attention in transformers (SDPA cannot soft-cap).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

Family = Literal["llama", "mistral", "gemma2"]


@dataclass(frozen=True)
class ModelPreset:
    family: Family
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    max_position_embeddings: int = 2048
    head_dim: int | None = None  # None = hidden_size // num_heads
    tie_word_embeddings: bool = False
    rope_theta: float = 10000.0
    sliding_window: int | None = None
    attn_logit_softcapping: float | None = None
    final_logit_softcapping: float | None = None


PRESETS: dict[str, ModelPreset] = {
    # ~0.3M non-embedding parameters: unit tests.
    "tiny-llama": ModelPreset("llama", 64, 172, 2, 4, 2, 512, tie_word_embeddings=True),
    "tiny-mistral": ModelPreset("mistral", 64, 172, 2, 4, 2, 512, tie_word_embeddings=True),
    "tiny-gemma2": ModelPreset(
        "gemma2",
        64,
        172,
        2,
        4,
        2,
        512,
        head_dim=16,
        tie_word_embeddings=True,
        sliding_window=64,
        attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0,
    ),
    # ~2M parameters with a 4k vocabulary: the demo's pre-training runs on 2 CPU cores.
    "demo-mistral": ModelPreset("mistral", 192, 512, 4, 6, 2, 1024, tie_word_embeddings=True),
    # ~1M parameters with a 2k vocabulary: the knowledge-probe demo (a small world with
    # paraphrased texts); small enough for ~100 exposures per fact within minutes.
    "demo-llama": ModelPreset("llama", 128, 384, 4, 4, 2, 1024, tie_word_embeddings=True),
    # ~6M and ~30M: CPU benchmarks and larger smoke runs.
    "small-mistral": ModelPreset("mistral", 256, 688, 6, 8, 4, 2048, tie_word_embeddings=True),
    "mistral-30m": ModelPreset("mistral", 512, 1376, 8, 8, 4, 2048, tie_word_embeddings=True),
    # Paper scale (see the module docstring for the reasoning).
    "mistral-500m": ModelPreset("mistral", 1280, 4480, 20, 20, 4, 4096),
    "mistral-1.3b": ModelPreset("mistral", 2048, 5632, 24, 16, 8, 4096),
    "llama-1b": ModelPreset("llama", 2048, 8192, 16, 32, 8, 4096, head_dim=64, rope_theta=5e5),
    "gemma2-500m": ModelPreset(
        "gemma2",
        1280,
        5120,
        18,
        10,
        5,
        4096,
        head_dim=128,
        tie_word_embeddings=True,
        sliding_window=1024,
        attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0,
    ),
}

GEMMA2_ONLY = ("attn_logit_softcapping", "final_logit_softcapping")


def resolve_preset(name: str, overrides: dict[str, Any] | None = None) -> ModelPreset:
    """The preset `name` with `overrides` applied; errors name the bad key or preset."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(asdict(preset)))
    if unknown:
        raise ValueError(f"unknown model option(s) {unknown}; known: {sorted(asdict(preset))}")
    preset = replace(preset, **overrides)
    if preset.family != "gemma2":
        bad = [k for k in GEMMA2_ONLY if getattr(preset, k)]
        if bad:
            raise ValueError(
                f"{', '.join(bad)} only exist in the gemma2 family (preset {name!r} is "
                f"{preset.family}); pick a gemma2 preset or set family: gemma2"
            )
    if preset.num_heads % preset.num_kv_heads:
        raise ValueError(
            f"num_heads ({preset.num_heads}) must be a multiple of num_kv_heads "
            f"({preset.num_kv_heads}) for grouped-query attention"
        )
    if preset.head_dim is None and preset.hidden_size % preset.num_heads:
        raise ValueError(
            f"hidden_size ({preset.hidden_size}) must be divisible by num_heads "
            f"({preset.num_heads}), or set head_dim"
        )
    return preset


def hf_config(preset: ModelPreset, vocab_size: int, bos_id: int | None, eos_id: int | None):
    """The transformers config object for `preset` (a PretrainedConfig subclass)."""
    from transformers import Gemma2Config, LlamaConfig, MistralConfig

    common: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": preset.hidden_size,
        "intermediate_size": preset.intermediate_size,
        "num_hidden_layers": preset.num_layers,
        "num_attention_heads": preset.num_heads,
        "num_key_value_heads": preset.num_kv_heads,
        "max_position_embeddings": preset.max_position_embeddings,
        "tie_word_embeddings": preset.tie_word_embeddings,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "pad_token_id": eos_id,
        "use_cache": False,  # training; generate() turns the cache on by itself
    }
    if preset.head_dim is not None:
        common["head_dim"] = preset.head_dim
    rope = {"rope_type": "default", "rope_theta": preset.rope_theta}
    if preset.family == "llama":
        return LlamaConfig(**common, rope_parameters=rope)
    if preset.family == "mistral":
        return MistralConfig(**common, rope_parameters=rope, sliding_window=preset.sliding_window)
    return Gemma2Config(
        **common,
        rope_parameters=rope,
        sliding_window=preset.sliding_window or preset.max_position_embeddings,
        attn_logit_softcapping=preset.attn_logit_softcapping or None,  # 0 = off
        final_logit_softcapping=preset.final_logit_softcapping or None,
        query_pre_attn_scalar=preset.head_dim or preset.hidden_size // preset.num_heads,
    )


def build_model(
    preset: ModelPreset, vocab_size: int, bos_id: int | None, eos_id: int | None, seed: int
) -> Any:
    """A freshly initialised causal LM for `preset` (seeded; fp32)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = hf_config(preset, vocab_size, bos_id, eos_id)
    attn = "eager" if preset.family == "gemma2" else "sdpa"
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, attn_implementation=attn)


def count_parameters(model: Any) -> dict[str, int]:
    """Total parameters and those that are matrix multiplies per token (for FLOPs)."""
    total = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight.numel()
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    # A tied embedding is still the lm_head matmul; an untied input lookup costs nothing.
    matmul = total if tied else total - embed
    return {"total": total, "embedding": embed, "matmul": matmul}


def flops_per_token(model: Any, seq_len: int) -> float:
    """Training FLOPs per token: 6 N (forward + backward) + 12 L d s for attention (PaLM)."""
    cfg = model.config
    n = count_parameters(model)["matmul"]
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    attn = 12 * cfg.num_hidden_layers * cfg.num_attention_heads * head_dim * seq_len
    return 6.0 * n + attn
