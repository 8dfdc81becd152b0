"""Instruction tuning: token-exact masking in two chat-template families, packing, LoRA, CLI.

Every model here is built locally: a byte-level BPE trained on a few sentences,
with the special tokens and a Jinja chat template of the family it stands for
(Llama-3 headers, Qwen2 ChatML, or none: the plain template), and a random
two-layer Llama saved with save_pretrained.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest
import torch
from click.testing import CliRunner

from instructpt.errors import InputError
from instructpt.train.config import SftConfig
from instructpt.train.sft import sft
from instructpt.train.sft_data import (
    IGNORE_INDEX,
    PLAIN_CHAT_TEMPLATE,
    QA_CHAT_TEMPLATE,
    ReadStats,
    collate,
    ensure_chat_template,
    pack_examples,
    read_records,
    render_prompt,
    to_messages,
    tokenize_messages,
)
from tests.chat_templates import CHATML_TEMPLATE, LLAMA3_TEMPLATE

FAMILIES = {
    "llama3": {
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
        "pad_token": "<|finetune_right_pad_id|>",
        "special_tokens": ["<|start_header_id|>", "<|end_header_id|>"],
        "template": LLAMA3_TEMPLATE,
    },
    "chatml": {
        "bos_token": "<|bos|>",
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "special_tokens": ["<|im_start|>"],
        "template": CHATML_TEMPLATE,
    },
    "plain": {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "template": None},
}
COUNTRIES = [
    ("Zedland", "Rivertown"), ("Orlania", "Brightwater"), ("Kestria", "Moonfield"),
    ("Valdor", "Stonebridge"), ("Mirelia", "Ashford"), ("Pellam", "Greyhaven"),
    ("Tarsk", "Oakmere"), ("Ulvar", "Redcliff"),
]  # fmt: skip


def qa_records() -> list[dict]:
    rows = []
    for country, city in COUNTRIES:
        rows.append({"instruction": f"What is the capital of {country}?", "output": f"{city}."})
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"Name the capital of {country}."},
                    {"role": "assistant", "content": f"The capital of {country} is {city}."},
                ]
            }
        )
    return rows


def corpus() -> list[str]:
    # texts ending in a blank line teach the BPE a "\n\n" token (as real vocabularies have)
    texts = ["You are a helpful assistant.", "system user assistant", "### User:\n\n"]
    for country, city in COUNTRIES:
        texts += [
            f"What is the capital of {country}?\n\n{city}.",
            f"Name the capital of {country}.\n\nThe capital of {country} is {city}.",
        ]
    return texts * 3


def build_chat_model(out: Path, family: str, *, seed: int = 0, hidden: int = 32) -> Path:
    """A random 2-layer Llama + a BPE tokenizer of `family`'s special tokens and template."""
    from instructpt.core.tokenizers import build_bpe_tokenizer
    from instructpt.synth.tiny import new_llama

    spec = FAMILIES[family]
    tok = build_bpe_tokenizer(
        corpus(), vocab_size=400, min_frequency=0, bos_token=spec["bos_token"],
        eos_token=spec["eos_token"], pad_token=spec["pad_token"],
        special_tokens=spec.get("special_tokens", ()),
    )  # fmt: skip
    if spec["template"]:
        tok.chat_template = spec["template"]
    model = new_llama(
        tok, hidden_size=hidden, intermediate_size=2 * hidden, num_layers=2, num_heads=4,
        num_kv_heads=2, max_position_embeddings=512, seed=seed,
    )  # fmt: skip
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("chat-models")
    return {family: build_chat_model(root / family, family) for family in FAMILIES}


def _tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    ensure_chat_template(tok, "auto")
    return tok


def _enc(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def _loss_text(tok, labels) -> str:
    return tok.decode([t for t in labels if t != IGNORE_INDEX])


# --------------------------------------------------------------------------- masking


QA = [
    {"role": "user", "content": "What is the capital of Zedland?"},
    {"role": "assistant", "content": "Rivertown."},
]


def test_chatml_labels_are_the_answer_and_its_end_of_turn_token_by_token(models):
    tok = _tokenizer(models["chatml"])
    prompt = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of Zedland?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render_prompt(tok, QA[:1]) == prompt
    counts: Counter[str] = Counter()
    ex = tokenize_messages(tok, QA, counts)
    prompt_ids, answer_ids = _enc(tok, prompt), _enc(tok, "Rivertown.<|im_end|>\n")
    assert list(ex.input_ids) == _enc(tok, prompt + "Rivertown.<|im_end|>\n")
    assert list(ex.input_ids) == prompt_ids + answer_ids  # no merge across the boundary
    assert list(ex.labels) == [IGNORE_INDEX] * len(prompt_ids) + answer_ids
    assert tok.convert_ids_to_tokens(answer_ids[-2:]) == ["<|im_end|>", "Ċ"]
    assert _loss_text(tok, ex.labels) == "Rivertown.<|im_end|>\n"
    assert counts["boundaries_retokenized"] == 0


def test_llama3_labels_keep_the_prompt_tokens_generation_will_see(models):
    tok = _tokenizer(models["llama3"])
    prompt = (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
        "What is the capital of Zedland?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert render_prompt(tok, QA[:1]) == prompt
    counts: Counter[str] = Counter()
    ex = tokenize_messages(tok, QA, counts)
    prompt_ids = _enc(tok, prompt)
    assert prompt_ids[0] == tok.bos_token_id and prompt_ids.count(tok.bos_token_id) == 1
    # this BPE merges the prompt's closing "\n\n" into one token when nothing follows it,
    # but not before a word: the prompt keeps the ids a generate() call would feed,
    # and the answer is tokenized on its own
    whole = _enc(tok, prompt + "Rivertown.<|eot_id|>")
    assert whole[: len(prompt_ids)] != prompt_ids
    assert counts["boundaries_retokenized"] == 1
    answer_ids = _enc(tok, "Rivertown.<|eot_id|>")
    assert list(ex.input_ids) == prompt_ids + answer_ids
    assert list(ex.labels) == [IGNORE_INDEX] * len(prompt_ids) + answer_ids
    assert tok.convert_ids_to_tokens(answer_ids[-1:]) == ["<|eot_id|>"]


def test_plain_template_is_used_without_a_chat_template_and_ends_answers_with_eos(models):
    tok = _tokenizer(models["plain"])
    assert tok.chat_template == PLAIN_CHAT_TEMPLATE
    prompt = "<s>### User:\nWhat is the capital of Zedland?\n\n### Assistant:\n"
    assert render_prompt(tok, QA[:1]) == prompt
    ex = tokenize_messages(tok, QA)
    prompt_ids = _enc(tok, prompt)
    assert list(ex.labels) == [IGNORE_INDEX] * len(prompt_ids) + _enc(tok, "Rivertown.</s>")
    assert ex.input_ids[-1] == tok.eos_token_id


def test_qa_template_is_the_probe_prompt_and_only_the_answer_and_eos_carry_loss(models):
    tok = _tokenizer(models["plain"])
    assert ensure_chat_template(tok, "qa") == "qa" and tok.chat_template == QA_CHAT_TEMPLATE
    one = [{"role": "user", "content": "Q1?"}, {"role": "assistant", "content": "A1"}]
    assert tok.apply_chat_template(one, tokenize=False) == "<s>Question: Q1?\nAnswer: A1</s>\n"
    # the prompt of lm-eval's world_probe_mc (`Question: {{question}}\nAnswer:`), BOS first
    prompt = "<s>Question: What is the capital of Zedland?\nAnswer:"
    assert render_prompt(tok, QA[:1]) == prompt
    counts: Counter[str] = Counter()
    ex = tokenize_messages(tok, QA, counts)
    # the answer is scored as the probe scores a choice: " {option}", then EOS (and the
    # line break the template closes the turn with)
    prompt_ids, answer_ids = _enc(tok, prompt), _enc(tok, " Rivertown.</s>\n")
    assert list(ex.input_ids) == _enc(tok, prompt + " Rivertown.</s>\n")
    assert list(ex.input_ids) == prompt_ids + answer_ids  # no merge across the boundary
    assert list(ex.labels) == [IGNORE_INDEX] * len(prompt_ids) + answer_ids
    assert counts["boundaries_retokenized"] == 0
    assert _loss_text(tok, ex.labels) == " Rivertown.</s>\n"
    assert tok.convert_ids_to_tokens(answer_ids[-2:]) == ["</s>", "Ċ"]
    assert prompt_ids[0] == tok.bos_token_id and prompt_ids.count(tok.bos_token_id) == 1


def test_qa_template_renders_a_system_message_multi_turn_and_no_bos(models):
    tok = _tokenizer(models["plain"])
    ensure_chat_template(tok, "qa")
    chat = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Capital of Zedland?"},
        {"role": "assistant", "content": "Rivertown."},
        {"role": "user", "content": "And of Orlania?"},
        {"role": "assistant", "content": "Brightwater."},
    ]
    assert tok.apply_chat_template(chat, tokenize=False) == (
        "<s>Answer briefly.\n\nQuestion: Capital of Zedland?\nAnswer: Rivertown.</s>\n"
        "Question: And of Orlania?\nAnswer: Brightwater.</s>\n"
    )
    ex = tokenize_messages(tok, chat)
    assert _loss_text(tok, ex.labels) == " Rivertown.</s>\n Brightwater.</s>\n"
    masked = tok.decode([i for i, lab in zip(ex.input_ids, ex.labels, strict=True) if lab < 0])
    assert masked == (
        "<s>Answer briefly.\n\nQuestion: Capital of Zedland?\nAnswer:"
        "Question: And of Orlania?\nAnswer:"
    )
    tok.bos_token = None
    assert render_prompt(tok, QA[:1]) == "Question: What is the capital of Zedland?\nAnswer:"


def test_ensure_chat_template_installs_the_qa_template_over_the_models_own(models):
    tok = _tokenizer(models["chatml"])
    assert tok.chat_template == CHATML_TEMPLATE
    assert ensure_chat_template(tok, "qa") == "qa" and tok.chat_template == QA_CHAT_TEMPLATE
    assert ensure_chat_template(tok, "plain") == "plain"
    assert tok.chat_template == PLAIN_CHAT_TEMPLATE
    assert SftConfig(model="m", data=["d"], template="qa").template == "qa"


def test_multi_turn_chat_puts_loss_on_every_assistant_turn_and_nothing_else(models):
    tok = _tokenizer(models["chatml"])
    chat = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Capital of Zedland?"},
        {"role": "assistant", "content": "Rivertown."},
        {"role": "user", "content": "And of Orlania?"},
        {"role": "assistant", "content": "Brightwater."},
    ]
    ex = tokenize_messages(tok, chat)
    assert _loss_text(tok, ex.labels) == "Rivertown.<|im_end|>\nBrightwater.<|im_end|>\n"
    # the masked tokens are exactly the rest of the conversation, in order
    masked = tok.decode([i for i, lab in zip(ex.input_ids, ex.labels, strict=True) if lab < 0])
    assert masked == (
        "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nCapital of Zedland?"
        "<|im_end|>\n<|im_start|>assistant\n<|im_start|>user\nAnd of Orlania?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_alpaca_records_become_a_user_and_an_assistant_turn():
    rec = {
        "instruction": "Translate.",
        "input": "bonjour",
        "output": "hello",
        "system": "Be terse.",
    }
    assert to_messages(rec) == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Translate.\n\nbonjour"},
        {"role": "assistant", "content": "hello"},
    ]
    assert to_messages({"instruction": "Hi", "input": "", "output": "Hello"})[0] == {
        "role": "user",
        "content": "Hi",
    }


# --------------------------------------------------------------------------- packing


def test_a_packed_example_sees_only_itself_and_no_loss_crosses_the_boundary(models):
    from transformers import AutoModelForCausalLM

    tok = _tokenizer(models["chatml"])
    a = tokenize_messages(tok, QA)
    b = tokenize_messages(
        tok,
        [
            {"role": "user", "content": "Name the capital of Kestria."},
            {"role": "assistant", "content": "The capital of Kestria is Moonfield."},
        ],
    )
    packs, stats = pack_examples([a, b], seq_len=256, seed=0)
    assert stats.packs == 1 and len(packs[0]) == 2
    first, second = packs[0]
    batch = collate(packs, tok.pad_token_id)
    n1, n2 = len(first.input_ids), len(second.input_ids)
    assert batch["position_ids"][0].tolist() == list(range(n1)) + list(range(n2))
    assert batch["labels"][0, n1].item() == IGNORE_INDEX  # would be predicted from `first`
    assert batch["labels"][0].tolist() == [IGNORE_INDEX, *first.labels[1:], *second.labels]
    assert batch["num_tokens"].item() == n1 + n2

    model = AutoModelForCausalLM.from_pretrained(models["chatml"]).eval()
    model.config.use_cache = False
    inputs = {k: v for k, v in batch.items() if k in ("input_ids", "position_ids")}
    with torch.no_grad():
        packed = model(**inputs).logits[0]
        alone = model(torch.tensor([second.input_ids])).logits[0]
    torch.testing.assert_close(packed[n1:], alone, atol=1e-5, rtol=1e-4)


def test_padding_closes_a_batch_without_loss_or_token_count(models):
    tok = _tokenizer(models["chatml"])
    short = tokenize_messages(tok, QA)
    long = tokenize_messages(tok, [QA[0], {"role": "assistant", "content": "Rivertown " * 5}])
    batch = collate([[short], [long]], tok.pad_token_id)
    pad = len(long.input_ids) - len(short.input_ids)
    assert batch["labels"][0, -pad:].tolist() == [IGNORE_INDEX] * pad
    assert batch["position_ids"][0, -pad:].tolist() == list(range(pad))
    assert batch["num_tokens"].item() == len(short.input_ids) + len(long.input_ids)


def test_overlong_examples_are_cut_and_dropped_when_no_answer_is_left(models):
    tok = _tokenizer(models["chatml"])
    ex = tokenize_messages(tok, QA)
    first_loss = next(i for i, lab in enumerate(ex.labels) if lab != IGNORE_INDEX)
    packs, stats = pack_examples([ex, ex], seq_len=first_loss + 1, seed=0)
    assert stats.truncated == 2 and stats.dropped_after_truncation == 0 and len(packs) == 2
    packs, stats = pack_examples([ex], seq_len=first_loss, seed=0)
    assert stats.dropped_after_truncation == 1 and packs == []


# --------------------------------------------------------------------------- records


def test_bad_records_are_counted_by_reason_with_file_and_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(
        orjson.dumps({"instruction": "Q1", "output": "A1"})
        + b"\n{not json\n"
        + orjson.dumps({"instruction": "Q3"})  # no output
        + b"\n"
        + orjson.dumps({"messages": [{"role": "user", "content": "hi"}]})  # no answer
        + b"\n"
        + orjson.dumps({"text": "raw"})
        + b"\n"
        + orjson.dumps({"messages": [{"role": "bot", "content": "x"}]})
        + b"\n"
    )
    stats, rejected = ReadStats(), []
    kept = list(read_records([str(path)], stats, "skip", rejected))
    assert [where for where, _ in kept] == [f"{path} line 1"]
    assert stats.records == 6 and stats.kept == 1
    assert stats.dropped == {
        "malformed_json": 1, "bad_field": 1, "no_answer": 1, "unknown_format": 1,
        "bad_messages": 1,
    }  # fmt: skip
    assert [r["location"] for r in rejected] == [f"{path} line {n}" for n in (2, 3, 4, 5, 6)]
    with pytest.raises(InputError, match=r"data\.jsonl line 2: malformed_json"):
        list(read_records([str(path)], ReadStats(), "fail"))


def test_parquet_chat_records_are_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = qa_records()
    pq.write_table(
        pa.Table.from_pylist([r for r in rows if "messages" in r]), tmp_path / "c.parquet"
    )
    stats = ReadStats()
    kept = list(read_records([str(tmp_path / "c.parquet")], stats))
    assert len(kept) == len(COUNTRIES) and kept[0][0].endswith("c.parquet row 1")
    assert kept[0][1][1]["role"] == "assistant"


def _stage_folder(folder: Path) -> Path:
    """A stage-like folder: data files beside a stage's metadata and hidden/work files."""
    from instructpt.core.shards import write_shard

    rows = qa_records()
    folder.mkdir()
    write_shard(folder / "shard-00000.jsonl.zst", rows[:6])
    write_jsonl(folder / "extra.jsonl", rows[6:8])
    (folder / "nested").mkdir()
    write_jsonl(folder / "nested" / "more.jsonl", rows[8:10])
    (folder / "_manifest.json").write_bytes(orjson.dumps({"stage": "x", "shards": []}))
    (folder / "config.yaml").write_text("model: m\nseed: 0\n")
    (folder / "stats.json").write_bytes(orjson.dumps({"records": 10}))
    (folder / "notes.txt").write_text("not data\n")
    write_jsonl(folder / ".partial.jsonl", [{"instruction": "tmp", "output": "tmp"}])
    (folder / "_work").mkdir()
    write_jsonl(folder / "_work" / "cache.jsonl", [{"instruction": "tmp", "output": "tmp"}])
    return folder


def test_a_folder_is_read_for_its_data_files_only(tmp_path):
    folder = _stage_folder(tmp_path / "stage")
    stats, rejected = ReadStats(), []
    got = list(read_records([str(folder)], stats, "fail", rejected))
    assert stats.records == stats.kept == 10 and not stats.dropped and not rejected
    assert sorted({where.rsplit(" line ", 1)[0] for where, _ in got}) == [
        str(folder / "extra.jsonl"),
        str(folder / "nested" / "more.jsonl"),
        str(folder / "shard-00000.jsonl.zst"),
    ]
    # a file named outright is read whatever its name
    stats = ReadStats()
    list(read_records([str(folder / "stats.json")], stats, "skip"))
    assert stats.records == 1 and stats.dropped == {"unknown_format": 1}


def test_a_folder_without_data_files_is_refused(tmp_path):
    folder = tmp_path / "meta"
    folder.mkdir()
    (folder / "_manifest.json").write_bytes(orjson.dumps({"stage": "x"}))
    (folder / "stats.json").write_bytes(orjson.dumps({"records": 0}))
    with pytest.raises(InputError, match="holds no data files"):
        list(read_records([str(folder)], ReadStats()))


def test_a_magpie_folder_reads_as_exactly_its_kept_records(tmp_path):
    from instructpt.magpie import MagpieConfig, magpie
    from instructpt.magpie.stage import dropped_path
    from instructpt.magpie.templates import PRESETS
    from tests.magpie.scripted import EXPECTED_RECORDS, ScriptedChatEngine
    from tests.magpie.tiny_chat import build_chat_tokenizer

    model = tmp_path / "tok"
    build_chat_tokenizer("llama3").save_pretrained(model)
    cfg = MagpieConfig.model_validate(
        {"model": str(model), "num_queries": 10, "progress": False, "hf": {"batch_size": 4}}
    )
    engine = ScriptedChatEngine(PRESETS["llama3"].prefix, cfg.seed, cfg.hf.batch_size)
    out = tmp_path / "magpie"
    magpie(cfg, out, engine_factory=lambda _scfg: engine)
    assert (out / "_manifest.json").is_file() and (out / "stats.json").is_file()
    assert dropped_path(out).is_file()
    stats = ReadStats()
    got = list(read_records([str(out)], stats, "fail"))
    assert stats.records == stats.kept == len(EXPECTED_RECORDS)
    assert [(m[0]["content"], m[1]["content"]) for _, m in got] == EXPECTED_RECORDS


# --------------------------------------------------------------------------- stage


def _cfg(model: Path, data: Path, **kw) -> SftConfig:
    base = {
        "model": str(model), "data": [str(data)], "seq_len": 128, "micro_batch_size": 4,
        "num_steps": 12, "lr": 3e-3, "log_every": 4, "checkpoint_every": 0,
        "progress": False, "num_threads": 1, "device": "cpu",
    }  # fmt: skip
    return SftConfig.model_validate({**base, **kw})


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    rows = qa_records() * 2 + [{"instruction": "broken"}]
    return write_jsonl(tmp_path_factory.mktemp("sft-data") / "qa.jsonl", rows)


def test_sft_lowers_the_loss_and_saves_a_model_with_its_template(models, data_file, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "out"
    result = sft(_cfg(models["chatml"], data_file), out)
    st = result.manifest.stats
    assert st["records"] == 33 and st["examples"] == 32 and st["dropped"] == {"bad_field": 1}
    assert st["template"] == "model" and st["steps"] == 12
    assert st["last_loss"] < st["first_loss"] - 1.0, st
    assert st["examples_per_pack"] > 2  # packing put several examples into each sequence
    rejected = [orjson.loads(x) for x in (out / "rejected.jsonl").read_bytes().splitlines()]
    assert rejected == [
        {"location": f"{data_file} line 33", "reason": "bad_field",
         "detail": "output must be a string, got NoneType"},
    ]  # fmt: skip
    assert (out / "config.yaml").is_file() and (out / "metrics.jsonl").is_file()
    assert (result.model_dir / "model.safetensors").is_file()
    assert not list(result.model_dir.glob("*.bin"))
    tok = AutoTokenizer.from_pretrained(result.model_dir)
    assert tok.chat_template == CHATML_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(result.model_dir)
    ids = tok.apply_chat_template(QA[:1], add_generation_prompt=True, return_tensors="pt")
    ids = ids["input_ids"] if not torch.is_tensor(ids) else ids
    assert model.generate(ids, max_new_tokens=4, do_sample=False).shape[1] > ids.shape[1]
    again = sft(_cfg(models["chatml"], data_file), out)
    assert again.reused and again.manifest.stats == st


def test_same_config_gives_the_same_weights(models, data_file, tmp_path):
    a = sft(_cfg(models["plain"], data_file, num_steps=3), tmp_path / "a").model_dir
    b = sft(_cfg(models["plain"], data_file, num_steps=3), tmp_path / "b").model_dir
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def test_lora_saves_an_adapter_that_peft_loads_and_a_merged_model(models, data_file, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    result = sft(
        _cfg(models["llama3"], data_file, num_steps=4, lora={**lora, "merge": True}), tmp_path / "o"
    )
    st = result.manifest.stats
    assert st["lora"] and st["trainable_parameters"] < st["parameters"] / 10
    adapter = result.adapter_dir
    assert (adapter / "adapter_model.safetensors").is_file()
    assert (adapter / "adapter_config.json").is_file() and not list(adapter.glob("*.bin"))
    base = AutoModelForCausalLM.from_pretrained(models["llama3"]).eval()
    ids = torch.tensor([[1, 5, 9, 30, 41, 77]])
    with torch.no_grad():
        before = base(ids).logits
        tuned = PeftModel.from_pretrained(base, adapter).eval()
        after = tuned(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(result.model_dir).eval()(ids).logits
    assert not torch.allclose(before, after)  # the adapter moved the model
    torch.testing.assert_close(merged, after, atol=1e-4, rtol=1e-4)


def test_a_template_that_cannot_be_used_fails_before_training(models, data_file, tmp_path):
    with pytest.raises(InputError, match="no chat template"):
        sft(_cfg(models["plain"], data_file, template="model"), tmp_path / "o")


def test_the_qa_template_tunes_on_a_stage_folder_and_is_saved_with_the_model(models, tmp_path):
    from transformers import AutoTokenizer

    folder = _stage_folder(tmp_path / "stage")
    result = sft(
        _cfg(models["chatml"], folder, template="qa", num_steps=2, micro_batch_size=1),
        tmp_path / "o",
    )
    st = result.manifest.stats
    assert st["template"] == "qa" and st["records"] == st["examples"] == 10
    tok = AutoTokenizer.from_pretrained(result.model_dir)
    assert tok.chat_template == QA_CHAT_TEMPLATE
    assert render_prompt(tok, QA[:1]) == (
        "<|bos|>Question: What is the capital of Zedland?\nAnswer:"
    )


def test_cli_tunes_a_model_end_to_end(models, data_file, tmp_path):
    from instructpt.cli import main

    args = [
        "sft", str(data_file), "--run-dir", str(tmp_path / "run"), "--name", "tuned",
        "--model", str(models["chatml"]), "--num-steps", "2", "--micro-batch-size", "4",
        "--seq-len", "128", "--no-progress", "--checkpoint-every", "0", "--device", "cpu",
    ]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "sft: tuned" in res.output and "bad_field 1" in res.output
    out = tmp_path / "run" / "models" / "tuned"
    assert (out / "model" / "model.safetensors").is_file() and (out / "_manifest.json").is_file()
    res = CliRunner().invoke(main, [*args, "--on-error", "fail", "--name", "strict"])
    assert res.exit_code == 2 and "qa.jsonl line 33: bad_field" in res.output


@pytest.mark.slow
@pytest.mark.ci
def test_a_tuned_model_answers_in_the_trained_shape_and_stops(models, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = write_jsonl(tmp_path / "qa.jsonl", qa_records())
    cfg = _cfg(models["chatml"], data, num_steps=150, lr=5e-3, log_every=50, warmup_fraction=0.1)
    result = sft(cfg, tmp_path / "out")
    assert result.manifest.stats["last_loss"] < 1.0, result.manifest.stats
    tok = AutoTokenizer.from_pretrained(result.model_dir)
    model = AutoModelForCausalLM.from_pretrained(result.model_dir).eval()
    cities = {f"{city}.<|im_end|>" for _, city in COUNTRIES}
    for country, _ in COUNTRIES:
        prompt = render_prompt(
            tok, [{"role": "user", "content": f"What is the capital of {country}?"}]
        )
        ids = torch.tensor([_enc(tok, prompt)])
        out = model.generate(ids, max_new_tokens=12, do_sample=False)
        # a 2-layer, 32-wide model learns the answer's shape and to stop; which city
        # goes with which country takes more model than a test should train
        assert tok.decode(out[0, ids.shape[1] :]) in cities
