"""The chunked linear cross-entropy gives the plain path's loss and gradients, and falls back
where it cannot apply (soft-capping, LoRA or biased heads, FSDP, distillation)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import torch

from instructpt.train import linear_ce
from instructpt.train.config import LoraSpec, PretrainConfig
from instructpt.train.linear_ce import choose_loss_path, fused_loss_forward, linear_cross_entropy
from instructpt.train.loop import LoopConfig, train_loop
from instructpt.train.presets import build_model, resolve_preset
from instructpt.train.pretrain import pretrain, read_metrics

VOCAB = 300


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch):
    """Several chunks per batch (7 rows each), so chunk boundaries are exercised."""
    monkeypatch.setitem(linear_ce.CHUNK_ELEMENTS, "cpu", 7 * VOCAB)


def _model(preset: str, **overrides):
    return build_model(resolve_preset(preset, overrides), VOCAB, 1, 2, seed=0)


def _batch(seed: int = 0, positions: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (3, 24), generator=g)
    labels = ids.clone()
    labels[0, :9] = -100  # a prompt
    labels[2, 17:] = -100  # padding
    batch = {"input_ids": ids, "labels": labels}
    if positions:  # packed instruction data: two examples in row 1
        batch["position_ids"] = torch.cat([torch.arange(10), torch.arange(14)]).expand(3, -1)
    return batch


def _grads(model, batches, mode: str, bf16: bool = False, accum: int = 1):
    """Loss and every parameter's grad after `batches` (each loss / accum), as the loop does."""
    model.zero_grad(set_to_none=True)
    path = choose_loss_path(model, mode)
    losses = []
    with fused_loss_forward(model, path):
        for batch in batches:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch).loss / accum
            loss.backward()
            losses.append(loss.detach())
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return path, torch.stack(losses), grads


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm().clamp(min=1e-30))


CASES = [
    ("tiny-llama", {}),  # tied head
    ("tiny-mistral", {"tie_word_embeddings": False}),  # untied head
    ("tiny-gemma2", {"final_logit_softcapping": 0}),  # gemma2 without soft-capping
]


@pytest.mark.parametrize(("preset", "overrides"), CASES)
def test_fp32_loss_and_every_grad_match_the_plain_path(preset, overrides):
    model = _model(preset, **overrides)
    batches = [_batch(0), _batch(1, positions=True)]  # two micro-batches of a step
    plain_path, plain, g_plain = _grads(model, batches, "off", accum=2)
    path, fused, g_fused = _grads(model, batches, "on", accum=2)
    assert (plain_path.name, path.name) == ("model", "chunked-ce")
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=0)
    assert g_fused.keys() == g_plain.keys() == {n for n, _ in model.named_parameters()}
    for name, g in g_plain.items():
        assert _rel(g_fused[name], g) < 1e-5, name
        torch.testing.assert_close(g_fused[name], g, rtol=1e-4, atol=1e-7)
    assert "forward" not in vars(model)  # the class's forward is back


def test_tied_head_grad_is_the_sum_of_both_uses():
    model = _model("tiny-llama")
    assert model.lm_head.weight is model.model.embed_tokens.weight
    _, _, plain = _grads(model, [_batch()], "off")
    _, _, fused = _grads(model, [_batch()], "on")
    name = "model.embed_tokens.weight"
    assert _rel(fused[name], plain[name]) < 1e-5
    # the head's share alone would miss the embedding rows of the input tokens
    model.zero_grad(set_to_none=True)
    hidden = model.model(input_ids=_batch()["input_ids"]).last_hidden_state.detach()
    linear_cross_entropy(hidden, model.lm_head.weight, _batch()["labels"]).backward()
    assert _rel(model.lm_head.weight.grad, plain[name]) > 1e-3


@pytest.mark.parametrize(("preset", "overrides"), CASES[:2])
def test_bf16_autocast_matches_within_bf16_tolerance(preset, overrides):
    model = _model(preset, **overrides)
    _, plain, g_plain = _grads(model, [_batch()], "off", bf16=True)
    _, fused, g_fused = _grads(model, [_batch()], "on", bf16=True)
    torch.testing.assert_close(fused, plain, rtol=1e-2, atol=0)
    for name, g in g_plain.items():
        assert _rel(g_fused[name], g) < 2e-2, name


def test_ignored_labels_carry_no_loss_and_an_all_ignored_batch_gives_zero():
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(2, 6, 16, generator=g, requires_grad=True)
    weight = torch.randn(VOCAB, 16, generator=g, requires_grad=True)
    labels = torch.randint(0, VOCAB, (2, 6), generator=g)
    labels[1, 2:] = -100
    loss = linear_cross_entropy(hidden, weight, labels, chunk=4)
    loss.backward()
    logits = (hidden @ weight.t())[:, :-1].reshape(-1, VOCAB)
    ref = torch.nn.functional.cross_entropy(logits, labels[:, 1:].reshape(-1), ignore_index=-100)
    torch.testing.assert_close(loss, ref, rtol=1e-6, atol=0)
    assert torch.all(hidden.grad[1, 1:] == 0)  # positions whose next label is ignored
    assert torch.all(hidden.grad[:, -1] == 0)  # the last position predicts nothing
    none = linear_cross_entropy(hidden, weight, torch.full_like(labels, -100))
    assert float(none.detach()) == 0.0


def test_second_backward_is_refused():
    hidden = torch.randn(1, 4, 8, requires_grad=True)
    weight = torch.randn(VOCAB, 8, requires_grad=True)
    loss = linear_cross_entropy(hidden, weight, torch.randint(0, VOCAB, (1, 4)))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="only once"):
        loss.backward()


def test_soft_capping_falls_back_and_on_refuses_it():
    model = _model("tiny-gemma2")  # final_logit_softcapping 30
    path = choose_loss_path(model, "auto")
    assert path.name == "model" and "final_logit_softcapping" in path.reason
    with pytest.raises(ValueError, match="final_logit_softcapping"):
        choose_loss_path(model, "on")
    _, plain, _ = _grads(model, [_batch()], "off")
    _, auto, _ = _grads(model, [_batch()], "auto")
    assert torch.equal(auto, plain)


def test_biased_head_lora_head_and_distillation_fall_back():
    model = _model("tiny-mistral", tie_word_embeddings=False)
    model.lm_head.bias = torch.nn.Parameter(torch.zeros(VOCAB))
    assert "bias" in choose_loss_path(model, "auto").reason
    lora_head = _lora(_model("tiny-llama", tie_word_embeddings=False), ["lm_head", "q_proj"])
    assert "LoRA" in choose_loss_path(lora_head, "auto").reason
    assert choose_loss_path(_model("tiny-llama"), "auto", custom_loss=True).name == "loss_fn"


def _lora(model, targets: list[str]):
    from instructpt.train.lora import add_lora

    torch.manual_seed(0)
    return add_lora(model, LoraSpec(r=4, dropout=0.0, target_modules=targets))


def test_lora_body_with_a_plain_head_is_exact():
    model = _lora(_model("tiny-llama"), ["all-linear"])  # every linear but the head
    _, plain, g_plain = _grads(model, [_batch()], "off")
    path, fused, g_fused = _grads(model, [_batch()], "on")
    assert path.name == "chunked-ce"
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=0)
    assert g_plain and g_fused.keys() == g_plain.keys()  # adapters only: the head is frozen
    for name, g in g_plain.items():
        assert _rel(g_fused[name], g) < 1e-5, name


def test_fsdp2_sharded_model_falls_back(monkeypatch):
    from torch.distributed.fsdp import FSDPModule

    model = _model("tiny-llama")

    class Sharded(type(model), FSDPModule):  # the class fully_shard gives, without a group
        pass

    model.__class__ = Sharded
    assert "FSDP2" in choose_loss_path(model, "auto").reason


def test_whitelisted_forwards_are_llamas():
    """SPLITTABLE model types run decoder -> lm_head -> loss and nothing else, as Llama does."""
    import importlib

    def body(cls) -> str:
        src = re.sub(r'r?""".*?"""', "", inspect.getsource(cls.forward), flags=re.S)
        return re.sub(r"\s+", " ", src[src.index("outputs") :])

    from transformers import LlamaForCausalLM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    ref = body(LlamaForCausalLM)
    for model_type in linear_ce.SPLITTABLE - {"gemma2"}:  # gemma2: soft-capping checked apart
        name = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[model_type]
        cls = getattr(importlib.import_module("transformers"), name)
        assert body(cls) == ref, model_type
        assert cls.base_model_prefix == "model", model_type


def test_loop_with_grad_accum_gives_the_same_losses_and_weights():
    def run(mode: str):
        model = _model("tiny-mistral", tie_word_embeddings=False)
        cfg = LoopConfig(
            num_steps=3, grad_accum=2, log_every=1, fused_loss=mode, progress=False, lr=3e-3
        )
        result = train_loop(model, iter([_batch(i) for i in range(6)]), cfg)
        return result, model.state_dict()

    (plain, w_plain), (fused, w_fused) = run("off"), run("auto")
    assert (plain.loss_path, fused.loss_path) == ("model", "chunked-ce")
    for a, b in zip(plain.history, fused.history, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    for k in w_plain:
        torch.testing.assert_close(w_fused[k], w_plain[k], rtol=1e-4, atol=1e-5)


def test_pretrain_fused_on_and_off_give_the_same_losses_step_by_step(world_tokens, tmp_path):
    def run(mode: str, out: Path):
        cfg = PretrainConfig.model_validate(
            {
                "tokens": str(world_tokens["tokens"]),
                "tokenizer": str(world_tokens["tokenizer"]),
                "model": {"preset": "tiny-llama"},
                "micro_batch_size": 4,
                "grad_accum": 2,
                "num_steps": 6,
                "lr": 3e-3,
                "log_every": 1,
                "checkpoint_every": 0,
                "progress": False,
                "num_threads": 1,
                "precision": "fp32",
                "fused_loss": mode,
            }
        )
        return pretrain(cfg, out), read_metrics(out)

    (off, rows_off), (on, rows_on) = run("off", tmp_path / "off"), run("on", tmp_path / "on")
    assert off.manifest.stats["loss_path"] == "model"
    assert off.manifest.stats["loss_path_reason"] == "fused_loss: off"
    assert on.manifest.stats["loss_path"] == "chunked-ce"
    assert [r["step"] for r in rows_on] == [r["step"] for r in rows_off] == list(range(1, 7))
    for a, b in zip(rows_off, rows_on, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5), (a, b)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4), (a, b)
