"""Synthesizer training data: converters, exact label masks, few-shot packing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructpt.synth.format import Pair, context_prompt, example, render_pairs
from instructpt.synth.tiny import train_tokenizer
from instructpt.train.synth_data import (
    IGNORE_INDEX,
    TokenizedExample,
    WorldEntity,
    collate,
    copy_task_packs,
    load_world,
    pack_examples,
    rows_to_records,
    sample_world_pairs,
    squad_to_records,
    tokenize_record,
    world_to_records,
)

CONTEXT = "Ada Lovelace wrote the first program. She was born in London in 1815."
PAIRS = [
    {"question": "Who wrote the first program?", "answer": "Ada Lovelace"},
    {"question": "Where was she born?\nOptions:\n- Paris\n- London", "answer": "London"},
]


@pytest.fixture(scope="module")
def tokenizer():
    texts = [CONTEXT, example(CONTEXT, [Pair(**p) for p in PAIRS])] * 3
    return train_tokenizer(texts, vocab_size=300)


def test_labels_mask_the_context_and_keep_pairs_and_closing_eos(tokenizer):
    record = {"source": "demo", "context": CONTEXT, "pairs": PAIRS}
    ex = tokenize_record(tokenizer, record)
    prompt_ids = tokenizer(context_prompt(CONTEXT), add_special_tokens=False)["input_ids"]
    pair_ids = tokenizer(render_pairs([Pair(**p) for p in PAIRS]), add_special_tokens=False)[
        "input_ids"
    ]
    assert list(ex.input_ids) == prompt_ids + pair_ids
    # token by token: every context-prompt token ignored, every pair token kept as itself
    for i, (tok, label) in enumerate(zip(ex.input_ids, ex.labels, strict=True)):
        if i < len(prompt_ids):
            assert label == IGNORE_INDEX, (i, tokenizer.convert_ids_to_tokens(tok))
        else:
            assert label == tok, (i, tokenizer.convert_ids_to_tokens(tok))
    tokens = tokenizer.convert_ids_to_tokens(list(ex.input_ids))
    # the prompt starts with the literal <s> (the only BOS) and ends with the blank line
    assert ex.input_ids[0] == tokenizer.bos_token_id
    assert ex.labels[0] == IGNORE_INDEX
    assert tokens[len(prompt_ids) - 3 : len(prompt_ids)] == ["</CON>", "Ċ", "Ċ"]
    # the first labelled token is <QUE>, the last is the closing </s> (EOS)
    assert tokens[len(prompt_ids)] == "<QUE>"
    assert ex.input_ids[-1] == tokenizer.eos_token_id
    assert ex.labels[-1] == tokenizer.eos_token_id
    # decoding the whole example gives back the format text exactly
    decoded = tokenizer.decode(list(ex.input_ids), skip_special_tokens=False)
    assert decoded == example(CONTEXT, [Pair(**p) for p in PAIRS])


def _ex(source: str, n: int, tag: int) -> TokenizedExample:
    return TokenizedExample(source, (tag,) * n, (IGNORE_INDEX,) + (tag,) * (n - 1))


def test_packing_keeps_sources_apart_and_fills_up_to_seq_len():
    examples = [_ex("a", 30, i) for i in range(10)] + [_ex("b", 45, 100 + i) for i in range(7)]
    packs, stats = pack_examples(examples, seq_len=100, seed=3)
    assert stats.examples == 17 and stats.cut == 0
    for pack in packs:
        tags = set(pack.input_ids)
        assert len(pack.input_ids) <= 100
        assert all((t < 100) == (pack.source == "a") for t in tags)  # never mixes sources
        assert pack.num_examples == len(tags)  # whole examples only
    # 3 x 30 per "a" pack, 2 x 45 per "b" pack
    assert sorted(p.num_examples for p in packs if p.source == "a") == [1, 3, 3, 3]
    assert sorted(p.num_examples for p in packs if p.source == "b") == [1, 2, 2, 2]
    # every example lands in exactly one pack, with its labels unchanged
    seen = sorted(t for p in packs for t in dict.fromkeys(p.input_ids))
    assert seen == sorted([*range(10), *range(100, 107)])
    for pack in packs:
        assert pack.labels.count(IGNORE_INDEX) == pack.num_examples


def test_packing_is_deterministic_and_seeded():
    examples = [_ex("a", 10, i) for i in range(20)]
    first, _ = pack_examples(examples, seq_len=35, seed=1)
    again, _ = pack_examples(list(examples), seq_len=35, seed=1)
    other, _ = pack_examples(examples, seq_len=35, seed=2)
    assert first == again
    assert first != other


def test_an_example_longer_than_seq_len_is_cut_and_one_without_labels_dropped():
    long = TokenizedExample("a", tuple(range(50)), (IGNORE_INDEX,) * 10 + tuple(range(10, 50)))
    all_context = TokenizedExample("a", (7,) * 50, (IGNORE_INDEX,) * 45 + (7,) * 5)
    packs, stats = pack_examples([long, all_context], seq_len=20, seed=0)
    assert stats.cut == 2 and stats.dropped_no_labels == 1
    assert [p.input_ids for p in packs] == [tuple(range(20))]


def test_collate_right_pads_with_masked_labels():
    packs, _ = pack_examples([_ex("a", 3, 5), _ex("b", 2, 6)], seq_len=10, seed=0)
    batch = collate(packs, pad_id=0)
    assert batch["input_ids"].shape == (2, 3)
    short = next(i for i, p in enumerate(packs) if p.source == "b")
    assert batch["attention_mask"][short].tolist() == [1, 1, 0]
    assert batch["labels"][short].tolist() == [IGNORE_INDEX, 6, IGNORE_INDEX]


def test_rows_converter_detects_field_names_and_tags_the_source():
    rows = [
        {"dataset": "quac", "text": "Ctx one.", "QA_list": [{"Q": "q1?", "A": "a1"}]},
        {"dataset": "quac", "text": "Ctx two.", "QA_list": [{"Q": "q2?", "A": ""}]},
    ]
    assert list(rows_to_records(rows)) == [
        {"source": "quac", "context": "Ctx one.", "pairs": [{"question": "q1?", "answer": "a1"}]}
    ]
    named = [{"ctx": "C.", "items": [{"prompt": "p?", "reply": ["r", "s"]}]}]
    out = list(
        rows_to_records(
            named,
            source="mine",
            context_field="ctx",
            pairs_field="items",
            question_field="prompt",
            answer_field="reply",
        )
    )
    assert out == [
        {"source": "mine", "context": "C.", "pairs": [{"question": "p?", "answer": "r"}]}
    ]
    with pytest.raises(KeyError, match="context"):
        list(rows_to_records([{"source": "x", "qas": []}]))


def test_squad_converter_skips_unanswerable_questions(tmp_path: Path):
    squad = {
        "version": "v2.0",
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": "Paris is the capital of France.",
                        "qas": [
                            {
                                "id": "1",
                                "question": "What is the capital of France?",
                                "answers": [{"text": "Paris", "answer_start": 0}],
                                "is_impossible": False,
                            },
                            {
                                "id": "2",
                                "question": "What is the capital of Mars?",
                                "answers": [],
                                "plausible_answers": [{"text": "Paris", "answer_start": 0}],
                                "is_impossible": True,
                            },
                        ],
                    },
                    {
                        "context": "Nothing answerable.",
                        "qas": [
                            {"id": "3", "question": "Why?", "answers": [], "is_impossible": True}
                        ],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(squad))
    assert list(squad_to_records(path)) == [
        {
            "source": "squad",
            "context": "Paris is the capital of France.",
            "pairs": [{"question": "What is the capital of France?", "answer": "Paris"}],
        }
    ]


def _write_world(root: Path) -> Path:
    docs = [
        {"id": "p1", "text": "P1 text.", "meta": {"group": "synth_train"}},
        {"id": "p2", "text": "P2 text.", "meta": {"group": "probe"}},
    ]
    qa = []
    for eid, group in (("p1", "synth_train"), ("p2", "probe")):
        for n, (kind, attr) in enumerate(
            [("open", "a"), ("mc", "a"), ("open", "b"), ("open", "c"), ("cot", "d"), ("open", "e")]
        ):
            answer = (
                f"{eid}-{attr}" if kind != "cot" else f"r\nTherefore, the answer is {eid}-{attr}"
            )
            qa.append(
                {
                    "id": f"{eid}-qa{n}",
                    "entity_id": eid,
                    "group": group,
                    "kind": kind,
                    "attribute": attr,
                    "question": f"{kind} {attr} of {eid}?",
                    "answer": answer,
                    "final": f"{eid}-{attr}",
                }
            )
    root.mkdir()
    (root / "documents.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (root / "qa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qa))
    return root


def test_world_converter_samples_true_pairs_of_its_groups_only(tmp_path: Path):
    world = _write_world(tmp_path / "world")
    entities = load_world(world, ["synth_train"])
    assert [e.id for e in entities] == ["p1"] and len(entities[0].qa) == 6
    records = list(world_to_records(entities, num_pairs=(3, 4), seed=0))
    assert len(records) == 1 and records[0]["source"] == "world"
    assert records[0]["context"] == "P1 text."
    pairs = records[0]["pairs"]
    assert 3 <= len(pairs) <= 4
    truth = {(q["question"], q["answer"]) for q in entities[0].qa}
    assert all((p["question"], p["answer"]) in truth for p in pairs)
    attributes = [p["question"].split()[1] for p in pairs]
    assert len(set(attributes)) == len(attributes)  # one pair per attribute
    # seeded: same seed and sample, same pairs; other samples differ somewhere
    assert list(world_to_records(entities, num_pairs=(3, 4), seed=0)) == records
    samples = {
        json.dumps(
            sample_world_pairs(entities[0], num_pairs=(3, 4), kinds=["open"], seed=0, sample=s)
        )
        for s in range(8)
    }
    assert len(samples) > 1
    only_open = sample_world_pairs(entities[0], num_pairs=(5, 5), kinds=["open"], seed=0)
    assert {p["question"].split()[0] for p in only_open} == {"open"}
    assert len(only_open) == 4  # attributes a, b, c, e have open questions: no more exist
    assert isinstance(entities[0], WorldEntity)


def _person() -> WorldEntity:
    text = "Ada Brown is a baker. Brown was born in Hull in 1815. Ada Brown lives in York."
    qa = [
        {"kind": "open", "attribute": "home", "question": "Where does Ada Brown live?",
         "answer": "York", "final": "York"},
        {"kind": "open", "attribute": "job", "question": "What is Ada Brown's job?",
         "answer": "baker", "final": "baker"},
        {"kind": "open", "attribute": "year", "question": "When was Brown born?",
         "answer": "1815", "final": "1815"},
    ]  # fmt: skip
    return WorldEntity("p9", "synth_train", text, tuple(qa), "person", "Ada Brown")


def test_text_order_asks_about_facts_in_the_order_the_text_states_them():
    entity = _person()
    for sample in range(4):
        pairs = sample_world_pairs(
            entity, num_pairs=(3, 3), kinds=["open"], seed=0, sample=sample, order="text"
        )
        assert [p["answer"] for p in pairs] == ["baker", "1815", "York"]


def test_all_pairs_asks_every_attribute_once_so_the_stop_is_a_function_of_the_text():
    entity = _person()
    for sample in range(4):
        pairs = sample_world_pairs(
            entity, num_pairs=None, kinds=["open"], seed=0, sample=sample, order="text"
        )
        assert [p["answer"] for p in pairs] == ["baker", "1815", "York"]
    (record,) = world_to_records([entity], num_pairs=None, kinds=["open"], seed=3, sample=7)
    assert len(record["pairs"]) == 3


def test_attribute_order_follows_the_qa_rows_whatever_the_text_order():
    entity = _person()  # qa rows: home, job, year; the text: job, year, home
    for sample in range(4):
        pairs = sample_world_pairs(
            entity, num_pairs=None, kinds=["open"], seed=0, sample=sample, order="attribute"
        )
        assert [p["answer"] for p in pairs] == ["York", "baker", "1815"]


def test_renaming_a_person_changes_every_mention_in_text_and_pairs_alike():
    entity = _person()
    (plain,) = world_to_records([entity], num_pairs=(3, 3), kinds=["open"], seed=0)
    (renamed,) = world_to_records(
        [entity], num_pairs=(3, 3), kinds=["open"], seed=0, rename_people=True
    )
    assert "Ada" not in renamed["context"] and "Brown" not in renamed["context"]
    assert renamed["context"].count(" is a baker.") == 1
    first_last = renamed["context"].split(" is a baker.")[0]
    assert renamed["context"].count(first_last) == 2
    last = first_last.split()[1]
    assert f"{last} was born in Hull" in renamed["context"]
    for before, after in zip(plain["pairs"], renamed["pairs"], strict=True):
        assert after["answer"] == before["answer"]
        assert after["question"] == before["question"].replace("Ada Brown", first_last).replace(
            "Brown", last
        )
    again = world_to_records([entity], num_pairs=(3, 3), kinds=["open"], seed=0, rename_people=True)
    assert list(again) == [renamed]  # seeded


def test_copy_task_packs_label_only_the_predictable_copy_tokens() -> None:
    packs = copy_task_packs(range(10, 20), num=3, seq_len=64, seed=0, span=(3, 5))
    assert packs == copy_task_packs(range(10, 20), num=3, seq_len=64, seed=0, span=(3, 5))
    for pack in packs:
        ids, labels = pack.input_ids, pack.labels
        assert 0 < len(ids) <= 64 and len(ids) == len(labels)
        at = 0
        while at < len(ids):  # walk span + copy blocks: [a1..ak, a1..ak]
            k = next(n for n in range(3, 6) if ids[at : at + n] == ids[at + n : at + 2 * n])
            assert labels[at : at + k + 1] == (IGNORE_INDEX,) * (k + 1)
            assert labels[at + k + 1 : at + 2 * k] == ids[at + 1 : at + k]
            assert all(10 <= t < 20 for t in ids[at : at + k])
            at += 2 * k
