"""Training data for an instruction synthesizer: converters, rendering, label masks, packing.

A training record is a plain dict, the same shape whatever the origin:

    {"source": "squad", "context": "<raw text>", "pairs": [{"question": ..., "answer": ...}]}

`source` names the dataset; packing never puts two sources in one sequence.

Rendering follows `synth/format.py` exactly (the paper, section 2.1 and the
released synthesizer): an example is `<s> <CON> {text} </CON>\\n\\n` followed by
its pairs and a closing `</s>`. The prompt part and the pair part are tokenized
separately with `add_special_tokens=False` and concatenated, so the prompt's
tokens are exactly what `synth/stage.py` sends at inference time (a joint
tokenization could merge tokens across the boundary in some tokenizers and
teach the model a prefix it never sees). Labels are -100 on the prompt part
and the token ids themselves on the pairs and the closing `</s>`: the loss is
computed on the pairs only, and the model learns to stop (EOS) after them.

Few-shot packing (paper: "several examples from the same dataset are packed
into one sequence as few-shot demonstrations"): examples of one source, in a
seeded order, go into the first of a few open packs with room for them
(first fit, never beyond `seq_len`); each keeps its own `<s>`, and every
label mask stays as it was, so a later example learns from seeing earlier
finished examples exactly like a round-r prompt of the M-shot synthesize
stage. An example longer than
`seq_len` on its own is cut at `seq_len` (it opens its own pack; its tail
pairs and `</s>` are lost) and dropped when no labelled token survives the
cut; both are counted in `PackStats`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructpt.synth.format import Pair, context_prompt, render_pairs
from instructpt.world.names import NameMaker

IGNORE_INDEX = -100

#: Packs kept open for first-fit packing (see `pack_examples`).
OPEN_PACKS = 8

Record = dict[str, Any]

#: Field names tried, in order, when a row converter is not told which one to use:
#: the public synthesizer fine-tuning collection and common context-QA dumps.
CONTEXT_FIELDS = ("context", "text", "passage", "document", "story")
PAIRS_FIELDS = ("qa_pairs", "QA_list", "qas", "pairs", "qa")
QUESTION_FIELDS = ("question", "Q", "q", "instruction", "input")
ANSWER_FIELDS = ("answer", "A", "a", "response", "output")
SOURCE_FIELDS = ("source", "dataset", "task", "config_name")


def _pick(
    row: Mapping[str, Any], explicit: str | None, candidates: Sequence[str], what: str
) -> Any:
    if explicit is not None:
        if explicit not in row:
            raise KeyError(f"row has no {what} field '{explicit}' (fields: {sorted(row)})")
        return row[explicit]
    for name in candidates:
        if name in row:
            return row[name]
    raise KeyError(f"row has no {what} field; tried {list(candidates)} (fields: {sorted(row)})")


def _answer_text(value: Any) -> str:
    """An answer given as a string, a list of strings or {"text": [...]}: the first one."""
    if isinstance(value, Mapping):
        value = value.get("text", "")
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    return str(value).strip()


def rows_to_records(
    rows: Iterable[Mapping[str, Any]],
    *,
    source: str | None = None,
    source_field: str | None = None,
    context_field: str | None = None,
    pairs_field: str | None = None,
    question_field: str | None = None,
    answer_field: str | None = None,
) -> Iterator[Record]:
    """Rows holding a context and a list of QA pairs -> training records.

    Field names are detected from the `*_FIELDS` candidates unless given. The
    source is `source` when given, else the row's source field; a pair with an
    empty question or answer is skipped, a row left without pairs too.
    """
    for row in rows:
        if source is not None:
            name = source
        else:
            name = str(_pick(row, source_field, SOURCE_FIELDS, "source"))
        context = str(_pick(row, context_field, CONTEXT_FIELDS, "context")).strip()
        pairs = []
        for qa in _pick(row, pairs_field, PAIRS_FIELDS, "pairs"):
            question = str(_pick(qa, question_field, QUESTION_FIELDS, "question")).strip()
            answer = _answer_text(_pick(qa, answer_field, ANSWER_FIELDS, "answer"))
            if question and answer:
                pairs.append({"question": question, "answer": answer})
        if context and pairs:
            yield {"source": name, "context": context, "pairs": pairs}


def squad_to_records(squad: Mapping[str, Any] | Path, source: str = "squad") -> Iterator[Record]:
    """SQuAD-style JSON (v1.1 or v2.0) -> one record per paragraph with answers.

    data -> paragraphs -> context, qas -> question, answers[0].text. Unanswerable
    questions (`is_impossible`, or no answers) are skipped: the synthesizer only
    ever writes answerable pairs.
    """
    if isinstance(squad, Path):
        squad = json.loads(squad.read_text("utf-8"))
    for article in squad["data"]:
        for paragraph in article["paragraphs"]:
            pairs = []
            for qa in paragraph["qas"]:
                answers = qa.get("answers") or []
                if qa.get("is_impossible") or not answers:
                    continue
                answer = str(answers[0]["text"]).strip()
                if qa["question"].strip() and answer:
                    pairs.append({"question": qa["question"].strip(), "answer": answer})
            if pairs:
                yield {"source": source, "context": paragraph["context"], "pairs": pairs}


# --- the demo world -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorldEntity:
    """One entity of the demo world: its text and its ground-truth QA rows (qa.jsonl)."""

    id: str
    group: str
    text: str
    qa: tuple[dict[str, Any], ...]
    type: str = ""
    name: str = ""  # from entities.jsonl when present


def load_world(world_dir: Path, groups: Sequence[str]) -> list[WorldEntity]:
    """Entities of `groups` from `world_dir/{documents,qa}.jsonl`, in document order."""
    wanted = set(groups)
    qa_by_entity: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with (world_dir / "qa.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["group"] in wanted:
                qa_by_entity[row["entity_id"]].append(row)
    names: dict[str, tuple[str, str]] = {}
    entities_file = world_dir / "entities.jsonl"
    if entities_file.is_file():
        with entities_file.open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                if row["group"] in wanted:
                    names[row["id"]] = (row["type"], row["name"])
    out = []
    with (world_dir / "documents.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            group = doc["meta"]["group"]
            if group in wanted:
                entity_id = doc["meta"].get("entity_id", doc["id"])  # extra renderings
                kind, name = names.get(entity_id, (doc["meta"].get("entity_type", ""), ""))
                qa = tuple(qa_by_entity[entity_id])
                out.append(WorldEntity(doc["id"], group, doc["text"], qa, kind, name))
    return out


def rename_person(record: Record, name: str, rng: random.Random) -> Record:
    """The record with a person's first and last name replaced by fresh ones.

    Data augmentation for the demo synthesizer: the world has only a few
    hundred training people, and a small model that sees each of them every
    epoch learns "this name -> these facts" instead of reading the text. A new
    name per epoch (same syllable generator as the world, `world/names.py`)
    leaves copying from the context as the only way to the answer. Relatives
    sharing the surname are renamed consistently in text and pairs alike.
    """
    parts = name.split()
    if len(parts) != 2:
        return record
    first, last = NameMaker(rng).person()
    swaps = {parts[0]: first, parts[1]: last}
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, swaps)) + r")\b")

    def swap(text: str) -> str:
        return pattern.sub(lambda m: swaps[m.group(1)], text)

    return {
        "source": record["source"],
        "context": swap(record["context"]),
        "pairs": [
            {"question": swap(p["question"]), "answer": swap(p["answer"])} for p in record["pairs"]
        ],
    }


def seeded_rng(*parts: object) -> random.Random:
    """A generator seeded by sha256 of the parts: same parts, same draws, on any machine."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def sample_world_pairs(
    entity: WorldEntity,
    *,
    num_pairs: tuple[int, int] | None,
    kinds: Sequence[str],
    seed: int,
    sample: int = 0,
    mc_share: float = 0.5,
    order: str = "random",
) -> list[dict[str, str]]:
    """A seeded sample of an entity's true pairs: at most one per attribute, shuffled.

    `num_pairs` None asks every attribute once: the number of pairs is then a
    function of the text, so a greedy decoder can learn when the facts run out
    and close with `</s>` (a random count in training leaves "one more pair"
    likelier than the stop at every step, and the model loops until the token
    budget ends, benchmarks/RESULTS.md). One per attribute keeps a sample free
    of near-duplicates (the open and the multiple-choice question about the
    same fact). `order` is "random", "text" (by where each answer first appears
    in the text) or "attribute" (the order the entity's QA rows list their
    attributes: one schema order for every person of the world, so the next
    question depends on the previous one alone, not on where the decoder is in
    a text it must track). An attribute asked both
    ways is asked as multiple choice with probability `mc_share` (its
    distractors are random, so its option tokens teach little per token);
    `sample` draws a different subset of the same entity (one per epoch).
    """
    rng = seeded_rng("world-pairs", seed, entity.id, sample)
    by_attribute: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(dict)
    for qa in entity.qa:
        if qa["kind"] in kinds:
            by_attribute[qa["attribute"]].setdefault(qa["kind"], []).append(qa)
    attributes = sorted(by_attribute)
    rng.shuffle(attributes)
    count = len(attributes) if num_pairs is None else rng.randint(*num_pairs)
    chosen = []
    for attribute in attributes[:count]:
        options = by_attribute[attribute]
        if "open" in options and "mc" in options:
            kind = "mc" if rng.random() < mc_share else "open"
        else:
            kind = rng.choice(sorted(options))
        chosen.append(rng.choice(options[kind]))
    if order == "text":
        # Ask in the order the facts appear in the text (every `final` is stated
        # verbatim in it, world/qa.py): a greedy decoder then walks through the text
        # instead of blending the openings of many equally likely questions.
        chosen.sort(key=lambda qa: _position(entity.text, qa["final"]))
    elif order == "attribute":
        rank = {a: i for i, a in enumerate(dict.fromkeys(qa["attribute"] for qa in entity.qa))}
        chosen.sort(key=lambda qa: rank[qa["attribute"]])
    return [{"question": qa["question"], "answer": qa["answer"]} for qa in chosen]


def _position(text: str, final: str) -> int:
    at = text.find(final)
    return at if at >= 0 else len(text)


def world_to_records(
    entities: Iterable[WorldEntity],
    *,
    num_pairs: tuple[int, int] | None = (4, 6),
    kinds: Sequence[str] = ("open", "mc", "cot"),
    seed: int = 0,
    sample: int = 0,
    mc_share: float = 0.5,
    order: str = "random",
    rename_people: bool = False,
    source: str = "world",
) -> Iterator[Record]:
    """Each entity's text -> a seeded sample of its ground-truth pairs (open, mc, cot).

    `num_pairs` None: every attribute of `kinds` once (`sample_world_pairs`).

    With `rename_people`, each person gets a fresh seeded name per `sample`
    (see `rename_person`); other entities keep theirs.
    """
    for entity in entities:
        pairs = sample_world_pairs(
            entity,
            num_pairs=num_pairs,
            kinds=kinds,
            seed=seed,
            sample=sample,
            mc_share=mc_share,
            order=order,
        )
        if not pairs:
            continue
        record = {"source": source, "context": entity.text, "pairs": pairs}
        if rename_people and entity.type == "person" and entity.name:
            record = rename_person(
                record, entity.name, seeded_rng("rename", seed, entity.id, sample)
            )
        yield record


# --- rendering, labels, packing -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenizedExample:
    source: str
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]  # IGNORE_INDEX on the prompt part


def tokenize_record(tokenizer: Any, record: Mapping[str, Any]) -> TokenizedExample:
    """Render a record with the synthesizer format and mask everything but the pairs."""
    pairs = [Pair(p["question"], p["answer"]) for p in record["pairs"]]
    prompt_ids = tokenizer(context_prompt(record["context"]), add_special_tokens=False)["input_ids"]
    pair_ids = tokenizer(render_pairs(pairs), add_special_tokens=False)["input_ids"]
    return TokenizedExample(
        source=record["source"],
        input_ids=tuple(prompt_ids) + tuple(pair_ids),
        labels=(IGNORE_INDEX,) * len(prompt_ids) + tuple(pair_ids),
    )


@dataclass(frozen=True, slots=True)
class PackedSequence:
    source: str
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    num_examples: int


@dataclass
class PackStats:
    examples: int = 0
    packs: int = 0
    cut: int = 0  # longer than seq_len alone: kept up to seq_len
    dropped_no_labels: int = 0  # nothing labelled left after the cut
    by_source: dict[str, int] = field(default_factory=dict)


def pack_examples(
    examples: Iterable[TokenizedExample], seq_len: int, seed: int
) -> tuple[list[PackedSequence], PackStats]:
    """Few-shot packs: same-source examples concatenated up to `seq_len` (module docstring).

    Examples are grouped by source and shuffled with a generator seeded by
    (seed, source); the packs of all sources are then shuffled together with
    one seeded by `seed`, so the result depends on the inputs and seed only.
    Sequences are not padded here (see `collate`).
    """
    stats = PackStats()
    groups: dict[str, list[TokenizedExample]] = defaultdict(list)
    for ex in examples:
        groups[ex.source].append(ex)
        stats.examples += 1
    packs: list[PackedSequence] = []
    for source in sorted(groups):
        items = groups[source]
        seeded_rng("pack-order", seed, source).shuffle(items)
        # First fit over a bounded window of open packs: fills sequences much better
        # than closing a pack at the first example that does not fit, stays linear in
        # the number of examples, and depends on the seeded order only.
        open_packs: list[list[TokenizedExample]] = []
        for ex in items:
            if len(ex.input_ids) > seq_len:
                stats.cut += 1
                ex = TokenizedExample(ex.source, ex.input_ids[:seq_len], ex.labels[:seq_len])
                if all(label == IGNORE_INDEX for label in ex.labels):
                    stats.dropped_no_labels += 1
                    continue
            size = len(ex.input_ids)
            for members in open_packs:
                if sum(len(m.input_ids) for m in members) + size <= seq_len:
                    members.append(ex)
                    break
            else:
                open_packs.append([ex])
                if len(open_packs) > OPEN_PACKS:
                    packs.append(_join(source, open_packs.pop(0)))
        packs.extend(_join(source, members) for members in open_packs)
        stats.by_source[source] = sum(1 for p in packs if p.source == source)
    seeded_rng("pack-shuffle", seed).shuffle(packs)
    stats.packs = len(packs)
    return packs, stats


def _join(source: str, members: Sequence[TokenizedExample]) -> PackedSequence:
    ids = tuple(t for m in members for t in m.input_ids)
    labels = tuple(t for m in members for t in m.labels)
    return PackedSequence(source, ids, labels, len(members))


def copy_task_packs(
    token_pool: Sequence[int], num: int, seq_len: int, seed: int, span: tuple[int, int] = (4, 48)
) -> list[PackedSequence]:
    """Synthetic induction sequences: random token spans each followed by a copy of itself.

    Why: a synthesizer must copy names and values out of its context, and a
    freshly initialised small model trained on a few thousand QA examples does
    not form the attention circuit for it (induction heads: find the earlier
    occurrence of the current token, predict what followed it). Pure copy data
    forms that circuit in a few hundred steps (Olsson et al. 2022). Spans draw
    uniformly from `token_pool` (the ids seen in the training texts), so rare
    name pieces get trained as often as common words; the loss is on the
    copies only, from their second token (the first is not predictable).
    """
    rng = seeded_rng("copy-task", seed)
    pool = list(token_pool)
    low, high = span
    packs = []
    for _ in range(num):
        ids: list[int] = []
        labels: list[int] = []
        while True:
            k = rng.randint(low, high)
            if len(ids) + 2 * k > seq_len:
                break
            chunk = [rng.choice(pool) for _ in range(k)]
            ids += chunk + chunk
            labels += [IGNORE_INDEX] * (k + 1) + chunk[1:]
        packs.append(PackedSequence("copy-task", tuple(ids), tuple(labels), 1))
    return packs


def collate(packs: Sequence[PackedSequence], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch of packs to its longest: pads get mask 0 and label -100."""
    import torch

    width = max(len(p.input_ids) for p in packs)
    ids = torch.full((len(packs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(packs), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(packs), width), dtype=torch.long)
    for row, p in enumerate(packs):
        n = len(p.input_ids)
        ids[row, :n] = torch.tensor(p.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(p.labels, dtype=torch.long)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
