"""Knowledge distillation: the loss formula, a step that moves the student toward the
teacher, the tokenizer check, and the option in sft, pretrain and continue."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import torch

from instructpt.errors import InputError
from instructpt.train.config import DistillConfig, PretrainConfig, SftConfig
from instructpt.train.distill import (
    IGNORE_INDEX,
    DistillLoss,
    distill_loss,
    kl_per_token,
    load_teacher,
)
from instructpt.train.loop import LoopConfig, train_loop
from instructpt.train.pretrain import pretrain, read_metrics
from instructpt.train.sft import sft
from instructpt.train.sft_data import (
    collate,
    pack_examples,
    to_messages,
    tokenize_messages,
)
from tests.train.test_sft import build_chat_model, qa_records, write_jsonl


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as the stage tests' num_threads=1 (2 threads on 2 busy cores crawl)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> dict[str, Path]:
    """Teacher and student: same ChatML tokenizer, different widths and seeds."""
    root = tmp_path_factory.mktemp("distill-models")
    return {
        "teacher": build_chat_model(root / "teacher", "chatml", seed=7, hidden=48),
        "student": build_chat_model(root / "student", "chatml", seed=1, hidden=32),
        "other": build_chat_model(root / "other", "llama3", seed=2),
    }


def test_loss_is_the_mix_of_ce_and_t2_scaled_kl_on_answer_tokens_only():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 6, 11, generator=g), torch.randn(2, 6, 11, generator=g)
    labels = torch.randint(0, 11, (2, 6), generator=g)
    labels[:, :3] = IGNORE_INDEX  # a prompt
    loss, ce, kl = distill_loss(s, t, labels, temperature=2.0, alpha=0.25)
    # by hand: position p predicts labels[p + 1]
    keep = labels[:, 1:] != IGNORE_INDEX
    p_t = torch.softmax(t[:, :-1] / 2, -1)[keep]
    log_s = torch.log_softmax(s[:, :-1] / 2, -1)[keep]
    want_kl = (p_t * (p_t.log() - log_s)).sum(-1).mean()
    want_ce = torch.nn.functional.cross_entropy(s[:, :-1][keep], labels[:, 1:][keep])
    torch.testing.assert_close(kl, want_kl)
    torch.testing.assert_close(ce, want_ce)
    torch.testing.assert_close(loss, 0.75 * want_ce + 0.25 * 4 * want_kl)
    # KL of a distribution to itself is zero; masked positions do not count at all
    assert kl_per_token(s, s, 2.0).abs().max() < 1e-6
    t2 = t.clone()
    t2[:, :2] += 100.0  # only positions whose next label is masked
    torch.testing.assert_close(distill_loss(s, t2, labels, 2.0, 0.25)[2], kl)


def test_ce_part_equals_the_models_own_loss(pair):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(pair["student"])
    model = AutoModelForCausalLM.from_pretrained(pair["student"]).eval()
    ex = tokenize_messages(tok, to_messages(qa_records()[0]))
    ids, labels = torch.tensor([ex.input_ids]), torch.tensor([ex.labels])
    with torch.no_grad():
        out = model(input_ids=ids, labels=labels)
    _, ce, _ = distill_loss(out.logits, out.logits, labels, 1.0, 0.5)
    torch.testing.assert_close(ce, out.loss)


def _batches(tok, n: int):
    examples = [tokenize_messages(tok, to_messages(r)) for r in qa_records()]
    packs, _ = pack_examples(examples, seq_len=128, seed=0)
    batch = collate(packs[:4], tok.pad_token_id)
    return batch, (batch for _ in range(n))


def _kl(student, teacher, batch, temperature: float) -> float:
    inputs = {k: batch[k] for k in ("input_ids", "position_ids")}
    with torch.no_grad():
        s, t = student(**inputs).logits, teacher(**inputs).logits
    return float(distill_loss(s, t, batch["labels"], temperature, 1.0)[2])


def test_distillation_steps_lower_the_kl_to_the_teacher_and_leave_it_unchanged(pair):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = DistillConfig(teacher=str(pair["teacher"]), temperature=2.0, alpha=1.0)
    teacher = load_teacher(cfg, pair["student"], "cpu")
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    frozen = {k: v.clone() for k, v in teacher.state_dict().items()}
    tok = AutoTokenizer.from_pretrained(pair["student"])
    student = AutoModelForCausalLM.from_pretrained(pair["student"])
    student.config.use_cache = False
    batch, stream = _batches(tok, 8)
    before = _kl(student, teacher, batch, 2.0)
    result = train_loop(
        student,
        stream,
        LoopConfig(num_steps=8, lr=1e-2, log_every=4, progress=False, grad_clip=0.0),
        loss_fn=DistillLoss(teacher, cfg),
    )
    after = _kl(student, teacher, batch, 2.0)
    assert after < 0.5 * before, (before, after)
    assert all({"ce", "kl"} <= set(row) for row in result.history)
    assert result.history[-1]["kl"] < result.history[0]["kl"]
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in frozen.items())


def test_a_teacher_with_another_tokenizer_is_refused_before_training(pair, tmp_path):
    cfg = DistillConfig(teacher=str(pair["other"]))
    with pytest.raises(InputError, match="another tokenizer than the student"):
        load_teacher(cfg, pair["student"], "cpu")
    data = write_jsonl(tmp_path / "d.jsonl", qa_records())
    sft_cfg = SftConfig(
        model=str(pair["student"]), data=[str(data)], distill=cfg, progress=False, device="cpu"
    )
    with pytest.raises(InputError, match="another tokenizer"):
        sft(sft_cfg, tmp_path / "out")
    assert not (tmp_path / "out" / "metrics.jsonl").exists()  # refused before any step


def test_sft_distills_on_answer_tokens_and_logs_ce_and_kl(pair, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", qa_records() * 2)
    cfg = SftConfig(
        model=str(pair["student"]), data=[str(data)], seq_len=128, micro_batch_size=4,
        num_steps=8, lr=1e-2, log_every=4, checkpoint_every=0, progress=False,
        num_threads=1, device="cpu",
        distill={"teacher": str(pair["teacher"]), "alpha": 1.0, "temperature": 2.0},
    )  # fmt: skip
    result = sft(cfg, tmp_path / "out")
    rows = [orjson.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_bytes().split()]
    assert all({"ce", "kl", "loss"} <= set(r) for r in rows)
    # pure distillation (alpha 1) pulls the student toward the teacher; with a random
    # teacher any CE share would pull it away, toward the data
    assert rows[-1]["kl"] < rows[0]["kl"]
    for r in rows:  # the logged loss is T^2 x the logged KL; the CE is logged beside it
        assert r["loss"] == pytest.approx(4 * r["kl"], rel=1e-4) and r["ce"] > 1
    assert result.manifest.stats["last_kl"] == rows[-1]["kl"]


def test_distill_off_keeps_the_pretrain_config_hash_of_older_runs():
    base = {"tokens": "t", "tokenizer": "t"}
    off = PretrainConfig.model_validate(base)
    also_off = PretrainConfig.model_validate({**base, "distill": {"temperature": 5.0}})
    on = PretrainConfig.model_validate({**base, "distill": {"teacher": "m"}})
    assert off.config_hash() == also_off.config_hash() != on.config_hash()
    # the hash of a config without the option: every other field, same recipe as StageConfig
    import hashlib
    import json

    data = off.model_dump(mode="json", exclude=set(off.runtime_fields) | {"distill"})
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
    assert off.config_hash() == hashlib.sha256(blob).hexdigest()[:16]


def test_pretrain_and_continue_take_a_teacher(world_tokens, tmp_path):
    base = {
        "tokens": str(world_tokens["tokens"]), "tokenizer": str(world_tokens["tokenizer"]),
        "model": {"preset": "tiny-llama"}, "micro_batch_size": 8, "lr": 3e-3, "log_every": 2,
        "checkpoint_every": 0, "progress": False, "num_threads": 1, "num_steps": 4,
    }  # fmt: skip
    teacher = pretrain(PretrainConfig.model_validate({**base, "seed": 5}), tmp_path / "t")
    distill = {"teacher": str(teacher.model_dir), "alpha": 0.5}
    student = pretrain(PretrainConfig.model_validate({**base, "distill": distill}), tmp_path / "s")
    cont = {k: v for k, v in base.items() if k not in ("model", "tokenizer")}
    cont.update(init_from=str(student.model_dir), distill=distill)
    again = pretrain(PretrainConfig.model_validate(cont), tmp_path / "c")
    for run, result in (("s", student), ("c", again)):
        rows = read_metrics(tmp_path / run)
        assert len(rows) == 2 and result.manifest.stats["last_kl"] == rows[-1]["kl"] > 0
        for r in rows:  # every token of the packed sequences: loss = 0.5 CE + 0.5 * 2^2 KL
            assert r["loss"] == pytest.approx(0.5 * r["ce"] + 2 * r["kl"], rel=1e-4)
