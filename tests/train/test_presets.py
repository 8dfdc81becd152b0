"""Model presets build the HF class they claim; Gemma-2 options change the model as claimed."""

from __future__ import annotations

import pytest
import torch

from instructpt.train.presets import (
    PRESETS,
    build_model,
    count_parameters,
    flops_per_token,
    hf_config,
    resolve_preset,
)

VOCAB = 256


def _model(name: str, **overrides):
    return build_model(resolve_preset(name, overrides), VOCAB, 1, 2, seed=0).eval()


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("tiny-llama", "LlamaForCausalLM"),
        ("tiny-mistral", "MistralForCausalLM"),
        ("tiny-gemma2", "Gemma2ForCausalLM"),
        ("demo-mistral", "MistralForCausalLM"),
    ],
)
def test_small_presets_build_the_named_class_and_run(name, cls):
    model = _model(name)
    assert type(model).__name__ == cls
    ids = torch.randint(0, VOCAB, (2, 24))
    out = model(input_ids=ids, labels=ids)
    assert out.logits.shape == (2, 24, VOCAB) and torch.isfinite(out.loss)
    assert model.config.bos_token_id == 1 and model.config.eos_token_id == 2


def test_paper_scale_presets_have_the_documented_sizes():
    """Built on the meta device: shapes only, no memory."""
    with torch.device("meta"):
        m500 = build_model(resolve_preset("mistral-500m"), 32000, 1, 2, 0)
        m13 = build_model(resolve_preset("mistral-1.3b"), 32000, 1, 2, 0)
    assert 480e6 < count_parameters(m500)["total"] < 530e6
    assert 1.2e9 < count_parameters(m13)["total"] < 1.35e9
    assert type(m500).__name__ == "MistralForCausalLM"
    assert m500.config.num_key_value_heads == 4 and m500.config.head_dim == 64
    # 6N dominates the FLOPs per token at 2k context for these sizes
    assert flops_per_token(m500, 2048) > 6 * count_parameters(m500)["matmul"]
    assert set(PRESETS) >= {"mistral-500m", "mistral-1.3b", "tiny-gemma2"}


def test_gqa_sets_the_key_value_projection_size():
    model = _model("tiny-gemma2", num_kv_heads=1)
    attn = model.model.layers[0].self_attn
    head_dim = model.config.head_dim
    assert attn.q_proj.out_features == 4 * head_dim
    assert attn.k_proj.out_features == attn.v_proj.out_features == 1 * head_dim
    full = _model("tiny-gemma2", num_kv_heads=4).model.layers[0].self_attn
    assert full.k_proj.out_features == 4 * head_dim


def test_final_logit_softcapping_bounds_the_logits():
    capped = _model("tiny-gemma2", final_logit_softcapping=0.5)
    with torch.no_grad():
        for p in capped.lm_head.parameters():  # tied: scales the embeddings too
            p.mul_(50)
        logits = capped(torch.randint(0, VOCAB, (1, 16))).logits
    assert logits.abs().max() <= 0.5 + 1e-6
    uncapped = _model("tiny-gemma2", final_logit_softcapping=0)
    assert uncapped.config.final_logit_softcapping is None
    with torch.no_grad():
        for p in uncapped.lm_head.parameters():
            p.mul_(50)
        assert uncapped(torch.randint(0, VOCAB, (1, 16))).logits.abs().max() > 0.5


def test_attention_softcapping_changes_the_output():
    ids = torch.randint(0, VOCAB, (1, 16))
    outs = []
    for cap in (0, 0.05):
        model = _model("tiny-gemma2", attn_logit_softcapping=cap, final_logit_softcapping=0)
        assert model.config.attn_logit_softcapping == (cap or None)
        with torch.no_grad():
            outs.append(model(ids).logits)
    assert not torch.allclose(outs[0], outs[1], atol=1e-4)


def test_sliding_window_alternates_and_limits_what_a_layer_sees():
    model = _model("tiny-gemma2", num_layers=4, sliding_window=4)
    assert model.config.layer_types == [
        "sliding_attention", "full_attention", "sliding_attention", "full_attention",
    ]  # fmt: skip
    # one sliding layer alone: position t sees only tokens t-3..t
    one = _model("tiny-gemma2", num_layers=1, sliding_window=4)
    assert one.config.layer_types == ["sliding_attention"]
    ids = torch.randint(3, VOCAB, (1, 12))
    changed = ids.clone()
    changed[0, 0] = 2
    with torch.no_grad():
        a, b = one(ids).logits, one(changed).logits
    assert not torch.allclose(a[0, :4], b[0, :4])  # inside the window of token 0
    torch.testing.assert_close(a[0, 4:], b[0, 4:])  # beyond it: unaffected
    # a global layer does see token 0 from everywhere
    glob = _model("tiny-gemma2", num_layers=1, sliding_window=64)
    with torch.no_grad():
        assert not torch.allclose(glob(ids).logits[0, 8:], glob(changed).logits[0, 8:])


def test_overrides_are_checked():
    with pytest.raises(ValueError, match="unknown model option"):
        resolve_preset("tiny-llama", {"layers": 3})
    with pytest.raises(ValueError, match="multiple of num_kv_heads"):
        resolve_preset("tiny-llama", {"num_kv_heads": 3})
    with pytest.raises(ValueError, match="gemma2 family"):
        resolve_preset("tiny-mistral", {"attn_logit_softcapping": 50.0})
    cfg = hf_config(resolve_preset("tiny-mistral", {"sliding_window": 32}), VOCAB, 1, 2)
    assert cfg.sliding_window == 32


@pytest.mark.parametrize(
    ("device", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", 989),
        ("NVIDIA H100 NVL", 835),
        ("NVIDIA H100 PCIe", 756),
        ("NVIDIA H200", 989),
        ("NVIDIA GH200 480GB", 989),
        ("NVIDIA L4", 121),
        ("NVIDIA L40", 181),
        ("NVIDIA L40S", 362),
        ("NVIDIA GeForce RTX 4090", 165),
        ("Tesla T4", None),
    ],
)
def test_peak_flops_match_whole_device_names(device, tflops):
    from instructpt.train.loop import known_peak_flops

    peak = known_peak_flops(device)
    assert (peak and round(peak / 1e12)) == tflops
