"""Instruction records -> token ids with the loss on the answers only, packed.

Records (one JSON object a line, or a parquet row):
- Alpaca style: `instruction`, optional `input`, `output`, optional `system`.
  Becomes the chat `[system?], user: instruction (+ "\\n\\n" + input), assistant: output`.
- Chat: `messages: [{role, content}, ...]`, roles `system`, `user`, `assistant`,
  at least one non-empty assistant turn. Every assistant turn carries loss;
  everything else (system, user turns, the template's role headers) is masked.

Inputs: files, globs or folders. A folder is read for its data files only
(`.jsonl`, `.jsonl.gz`, `.jsonl.zst`, `.ndjson`, `.parquet`, recursively,
sorted); names starting with `_` or `.` (a stage's `_manifest.json`, temporary
files) and other files (`config.yaml`, `stats.json`, ...) are skipped, so a
stage folder (e.g. a `magpie` output: its shards, never its `-dropped` side
file, which lies beside the folder) reads as exactly its kept records.

Rendering goes through `tokenizer.apply_chat_template`, with the model's own
template when it has one, else `PLAIN_CHAT_TEMPLATE` (below); `template: qa`
installs `QA_CHAT_TEMPLATE`, the cloze prompt of the world probe. A built-in
template is saved with the tuned model so inference renders prompts as
training did.

Masking, token by token: the conversation is rendered once as text, and the
template is rendered again up to the start of each assistant turn (with the
generation prompt) and up to its end; those renders must be prefixes of the
full text (else the record is dropped: `template_not_prefix`). The ids of the
segment between two boundaries are the ids of the text up to its end minus the
ids of the text up to its start, so a prompt is tokenized exactly as it will
be at generation time. Where a BPE merge crosses a boundary (the ids up to the
start are not a prefix of the ids up to the end, e.g. "\\n\\n" at the end of a
prompt is one token but two before a word), the segment is tokenized alone
(counted as `boundaries_retokenized`). Labels are the ids on assistant segments
and -100 elsewhere; the first label of an example is always -100 (nothing in
the example predicts it; in a pack it would be predicted across the boundary).

Packing: examples (truncated to `seq_len`, dropped when no loss token is left)
are placed first-fit, in a seeded order, into sequences of at most `seq_len`
tokens. Position ids restart at 0 for each example and no attention mask is
passed, so transformers builds a block-diagonal causal mask (its packed-sequence
path in `masking_utils`): an example attends only to itself, and its logits
equal those of the example alone (tested). Padding closes a batch; pads get
label -100 and are not counted as tokens.
"""

from __future__ import annotations

import glob
import itertools
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from instructpt.core.atomic import atomic_write_bytes
from instructpt.corpus.readers import Source, discover_sources, iter_source
from instructpt.errors import InputError

IGNORE_INDEX = -100
ROLES = ("system", "user", "assistant")

#: Used when a tokenizer has no chat template: Alpaca-like headers, the answer ends
#: with EOS so the tuned model learns to stop. Rendered, one turn each:
#: `<bos>### User:\n{q}\n\n### Assistant:\n{a}<eos>` (`### System:\n{s}\n\n` first).
PLAIN_CHAT_TEMPLATE = (
    "{% if bos_token %}{{ bos_token }}{% endif %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}### Assistant:\n{{ m['content'] }}{{ eos_token }}"
    "{% else %}### {{ m['role'] | capitalize }}:\n{{ m['content'] }}\n\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}### Assistant:\n{% endif %}"
)

#: `template: qa`: the cloze prompt of the world probe (`evaluate/probe.py`, lm-eval task
#: `world_probe_mc`: `Question: {{question}}\nAnswer:`, choices ` {option}`), so a model
#: tuned with it is probed with exactly the prompt it was tuned on. Rendered, one turn:
#: `<bos>Question: {q}\nAnswer: {a}<eos>\n` (a system message first: `{s}\n\n`); the
#: generation prompt is `Answer:` and the answer's loss starts at its leading space.
QA_CHAT_TEMPLATE = (
    "{% if bos_token %}{{ bos_token }}{% endif %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'user' %}Question: {{ m['content'] }}\n"
    "{% elif m['role'] == 'assistant' %}Answer: {{ m['content'] }}{{ eos_token }}\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Answer:{% endif %}"
)
BUILTIN_TEMPLATES = {"plain": PLAIN_CHAT_TEMPLATE, "qa": QA_CHAT_TEMPLATE}

#: What a folder input is read for (its other files are a stage's metadata, see above).
FOLDER_DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson", ".parquet")


class RecordError(ValueError):
    """A record that cannot become a training example: a reason code and a detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# --------------------------------------------------------------------------- records


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise RecordError("bad_field", f"{what} must be a string, got {type(value).__name__}")
    return value


def to_messages(data: Any) -> list[dict[str, str]]:
    """An Alpaca or chat record as a list of `{role, content}` messages (validated)."""
    if not isinstance(data, dict):
        raise RecordError("not_an_object", f"a record is a JSON object, got {type(data).__name__}")
    if "messages" in data:
        raw = data["messages"]
        if not isinstance(raw, list) or not raw:
            raise RecordError("bad_messages", "messages must be a non-empty list")
        messages = []
        for i, m in enumerate(raw):
            if not isinstance(m, dict) or "role" not in m or "content" not in m:
                raise RecordError("bad_messages", f"messages[{i}] needs role and content")
            if m["role"] not in ROLES:
                raise RecordError(
                    "bad_messages", f"messages[{i}].role {m['role']!r} is not one of {ROLES}"
                )
            messages.append({"role": m["role"], "content": _text(m["content"], f"messages[{i}]")})
        if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
            raise RecordError("no_answer", "no assistant message with content")
        return messages
    if "instruction" in data or "output" in data:
        instruction = _text(data.get("instruction"), "instruction").strip()
        output = _text(data.get("output"), "output")
        if not instruction:
            raise RecordError("empty_instruction", "instruction is empty")
        if not output.strip():
            raise RecordError("no_answer", "output is empty")
        extra = data.get("input")
        user = instruction
        if extra is not None and _text(extra, "input").strip():
            user = f"{instruction}\n\n{extra.strip()}"
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
        system = data.get("system")
        if system is not None and _text(system, "system").strip():
            messages.insert(0, {"role": "system", "content": system})
        return messages
    keys = sorted(data)[:8]
    raise RecordError(
        "unknown_format", f"needs `messages` or `instruction` + `output`; keys: {keys}"
    )


@dataclass
class ReadStats:
    records: int = 0  # records read (good or bad)
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # by reason


def read_records(
    inputs: Sequence[str], stats: ReadStats, on_error: str = "skip", rejected: list | None = None
) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """(location, messages) of every usable record of `inputs`, in order.

    A bad record is counted by reason and, with `on_error="fail"`, stops the
    read with its file and line; else it is skipped and appended to `rejected`.
    """
    for source in data_sources(inputs):
        if source.kind not in ("jsonl", "parquet"):
            raise InputError(f"{source.path}: sft reads jsonl or parquet files, not {source.kind}")
        for raw in iter_source(source):
            stats.records += 1
            try:
                if raw.error is not None:
                    raise RecordError(raw.error, raw.detail)
                messages = to_messages(raw.data)
            except RecordError as exc:
                reject(raw.location, exc, stats, on_error, rejected)
                continue
            stats.kept += 1
            yield raw.location, messages


def data_sources(inputs: Sequence[str]) -> list[Source]:
    """The sources of `inputs` (files, globs, folders), a folder's non-data files left out.

    Files named (or matched by a glob) are read whatever their name; inside a
    folder only `FOLDER_DATA_SUFFIXES` files count, and none under a name that
    starts with `_` or `.` (module docstring).
    """
    folders = [
        Path(match)
        for spec in inputs
        for match in (sorted(glob.glob(spec, recursive=True)) if glob.has_magic(spec) else [spec])
        if Path(match).is_dir()
    ]
    kept = []
    for source in discover_sources(list(inputs)):
        folder = next((f for f in folders if _is_under(Path(source.path), f)), None)
        if folder is None or _is_folder_data(Path(source.path).relative_to(folder)):
            kept.append(source)
    for folder in folders:
        if not any(_is_under(Path(s.path), folder) for s in kept):
            raise InputError(
                f"folder {folder} holds no data files ({', '.join(FOLDER_DATA_SUFFIXES)}, "
                "names not starting with '_' or '.')"
            )
    return kept


def _is_under(path: Path, folder: Path) -> bool:
    return path.is_relative_to(folder)  # the folder itself too (a txt or datasets folder)


def _is_folder_data(relative: Path) -> bool:
    if not relative.parts:  # the folder as one source: read_records names its kind
        return True
    if any(part.startswith(("_", ".")) for part in relative.parts):
        return False
    return relative.name.lower().endswith(FOLDER_DATA_SUFFIXES)


def reject(where: str, exc: RecordError, stats: ReadStats, on_error: str, rejected: Any) -> None:
    stats.dropped[exc.reason] += 1
    if on_error == "fail":
        raise InputError(f"{where}: {exc.reason} ({exc.detail}); fix it or use --on-error skip")
    if rejected is not None:
        rejected.append({"location": where, "reason": exc.reason, "detail": exc.detail})


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True, slots=True)
class Example:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def num_loss_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


def ensure_chat_template(tokenizer: Any, template: str) -> str:
    """Give `tokenizer` the template sft renders with; returns which one ("model"/"plain"/"qa").

    auto: the model's own, else plain; model: the model's own (required);
    plain, qa: the built-in template of that name, whatever the model has.
    """
    has_own = bool(getattr(tokenizer, "chat_template", None))
    if template == "model" and not has_own:
        raise InputError("template: model, but the tokenizer has no chat template; use auto")
    if template == "auto":
        template = "model" if has_own else "plain"
    if template == "model":
        return "model"
    if template not in BUILTIN_TEMPLATES:
        raise InputError(f"unknown template {template!r}; choose auto, model, plain or qa")
    if tokenizer.eos_token is None:
        raise InputError(
            f"the {template} template ends answers with EOS, but the tokenizer has none"
        )
    tokenizer.chat_template = BUILTIN_TEMPLATES[template]
    return template


def _render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    try:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )
    except Exception as exc:  # jinja raises its own errors (e.g. role order) from templates
        raise RecordError("template_error", f"{type(exc).__name__}: {exc}") from None


def answer_spans(
    tokenizer: Any, messages: list[dict[str, str]]
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns."""
    full = _render(tokenizer, messages, False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start = _render(tokenizer, messages[:i], True) if i else ""
        end = _render(tokenizer, messages[: i + 1], False)
        if not (full.startswith(start) and full.startswith(end) and len(start) <= len(end)):
            raise RecordError(
                "template_not_prefix",
                f"the template's render up to turn {i} is not a prefix of the whole conversation",
            )
        spans.append((len(start), len(end)))
    return full, spans


def encode(tokenizer: Any, text: str) -> list[int]:
    # special tokens come from the template text itself (BOS included), never added twice
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def tokenize_messages(
    tokenizer: Any, messages: list[dict[str, str]], counts: Counter[str] | None = None
) -> Example:
    """Token ids of a rendered conversation, labels on assistant turns only (module docstring)."""
    full, spans = answer_spans(tokenizer, messages)
    cuts = sorted({0, len(full), *(b for span in spans for b in span)})
    answer_starts = {s for s, e in spans if e > s}
    ids: list[int] = []
    labels: list[int] = []
    before: list[int] = []
    for a, b in itertools.pairwise(cuts):
        upto = encode(tokenizer, full[:b])
        if upto[: len(before)] == before:
            segment = upto[len(before) :]
        else:
            segment = encode(tokenizer, full[a:b])
            if counts is not None:
                counts["boundaries_retokenized"] += 1
        ids += segment
        labels += segment if a in answer_starts else [IGNORE_INDEX] * len(segment)
        before = upto
    if labels:
        labels[0] = IGNORE_INDEX
    if not any(label != IGNORE_INDEX for label in labels):
        raise RecordError("no_loss_tokens", "the answers rendered to no tokens")
    return Example(tuple(ids), tuple(labels))


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The text a tuned model continues to answer `messages` (ends with the assistant header)."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


# --------------------------------------------------------------------------- packing


@dataclass
class PackStats:
    examples: int = 0
    truncated: int = 0
    dropped_after_truncation: int = 0
    packs: int = 0
    tokens: int = 0
    loss_tokens: int = 0


def truncate(example: Example, seq_len: int) -> Example:
    return Example(example.input_ids[:seq_len], example.labels[:seq_len])


def pack_examples(
    examples: Iterable[Example], seq_len: int, seed: int, packing: bool = True
) -> tuple[list[list[Example]], PackStats]:
    """Examples grouped into sequences of <= `seq_len` tokens (one each without packing).

    Order: a shuffle seeded by `seed`, then first fit over the open packs, so
    the result depends on the examples and the seed only.
    """
    stats = PackStats()
    items: list[Example] = []
    for ex in examples:
        stats.examples += 1
        if len(ex.input_ids) > seq_len:
            stats.truncated += 1
            ex = truncate(ex, seq_len)
            if not ex.num_loss_tokens:
                stats.dropped_after_truncation += 1
                continue
        items.append(ex)
    random.Random(f"sft-pack-{seed}").shuffle(items)
    packs: list[list[Example]] = []
    room: list[int] = []
    for ex in items:
        size = len(ex.input_ids)
        for i, free in enumerate(room if packing else ()):
            if size <= free:
                packs[i].append(ex)
                room[i] -= size
                break
        else:
            packs.append([ex])
            room.append(seq_len - size)
        stats.tokens += size
        stats.loss_tokens += ex.num_loss_tokens
    stats.packs = len(packs)
    return packs, stats


def collate(packs: Sequence[Sequence[Example]], pad_id: int) -> dict[str, Any]:
    """A right-padded micro-batch: input ids, labels, restarting position ids, num_tokens."""
    import torch

    width = max(sum(len(ex.input_ids) for ex in pack) for pack in packs)
    ids = torch.full((len(packs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(packs), width), IGNORE_INDEX, dtype=torch.long)
    positions = torch.zeros((len(packs), width), dtype=torch.long)
    real = 0
    for row, pack in enumerate(packs):
        at = 0
        for ex in pack:
            n = len(ex.input_ids)
            ids[row, at : at + n] = torch.tensor(ex.input_ids)
            labels[row, at : at + n] = torch.tensor(ex.labels)
            positions[row, at : at + n] = torch.arange(n)
            at += n
        # pads form one more "example" of their own, so no real token sees them
        positions[row, at:] = torch.arange(width - at)
        real += at
    return {
        "input_ids": ids,
        "labels": labels,
        "position_ids": positions,
        "num_tokens": torch.tensor(real),
    }


def write_rejected(path: Path, rejected: list[dict[str, str]]) -> None:
    atomic_write_bytes(path, b"".join(orjson.dumps(r) + b"\n" for r in rejected))
