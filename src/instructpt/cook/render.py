"""Rendering: one text (or one M-shot chain of texts) and its pairs -> one cooked text.

Pure functions. Every choice (layout, pair template, option order, chain
joiner, none-of-the-above swap) is drawn from one `random.Random` seeded by
the string "{template set version}\\0{seed}\\0{record id}" (for a chain: the
id of its last record). `random.Random` hashes a str seed with SHA-512, so
the stream is the same on every machine and Python run (never `hash()`,
never the global generator), and the same input always cooks to the same
bytes.

Pairs follow the synthesizer conventions of `instructpt.synth.format`:
    open    any other question                 any answer
    mc      "{stem}\\nOptions:\\n- o1\\n- o2"  one option verbatim
    cot     "{q}\\nLet's think step by step."  "{reasoning}\\nTherefore, the answer is {final}"
    mc_cot  the mc question + the cot cue      as cot, with final = one option
An answer in the chain-of-thought form is cooked as chain of thought even
when the question lacks the cue. A pair that cannot be rendered is dropped
and counted by reason (`DROP_REASONS`). The MC answer must equal an option
after stripping; failing that, it may differ in case and a trailing full
stop, if that still picks exactly one option.

Format tags. Cooked text carries no synthesizer tags and no BOS/EOS. The
text and pairs are kept as they are except that every tag occurrence
(`<s>`, `</s>`, `<CON>`, `</CON>`, `<QUE>`, `<ANS>`, `</END>`) is defused
with `escape_tags` (`</s>` -> `< /s>`), exactly as the synthesizer prompt
showed the text, so that the pre-training tokenizer, which matches special
tokens inside text, never sees a literal BOS/EOS.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from instructpt.cook.config import CookConfig
from instructpt.cook.templates import (
    CHAIN_JOINS,
    LAYOUTS,
    MAX_OPTIONS,
    NONE_OF_THE_ABOVE,
    OPTION_STYLES,
    PAIR_TEMPLATES,
    TEMPLATE_SET_VERSION,
    Layout,
    OptionStyle,
    PairTemplate,
    has_labels,
    template_fields,
)
from instructpt.synth.format import (
    COT_MARK,
    THEREFORE,
    escape_tags,
    has_tag,
    split_chain_of_thought,
    split_multiple_choice,
)

#: Reasons a pair is dropped, in the order they are checked.
DROP_REASONS = (
    "malformed",
    "empty",
    "cot_without_final",
    "cot_without_reasoning",
    "mc_too_few_options",
    "mc_too_many_options",
    "mc_empty_option",
    "mc_duplicate_options",
    "mc_answer_not_in_options",
    "no_template",
)

_COT_CUE = COT_MARK.strip()

# Options whose meaning depends on the other options or their order.
_REFERS = re.compile(
    r"\b(all|none|both|neither|any|either) of (the )?(above|below|these|those|them|"
    r"the (options|choices|answers))\b"
    r"|^(all|none|both|neither)$"
    r"|^(only )?([a-e1-5]|\([a-e1-5]\)) (and|or|nor|&) ([a-e1-5]|\([a-e1-5]\))$",
    re.IGNORECASE,
)

# First words after which lowercasing the first letter is safe (no proper noun).
_LOWERABLE_WORDS = """
what who whom whose which when where why how is are was were do does did can could should
would will has have had in on at from for to the a an this that these those it its there
according since because as if name give list by during after before
"""
_LOWERABLE = frozenset(_LOWERABLE_WORDS.split())


def seeded_rng(record_id: str, seed: int) -> random.Random:
    """The generator for one output text; str seeds are hashed with SHA-512 by `random`."""
    return random.Random(f"{TEMPLATE_SET_VERSION}\0{seed}\0{record_id}")


def lower_first(text: str) -> str | None:
    """`text` with its first letter lowercased, or None when that could hit a name."""
    first = text.split(maxsplit=1)[0] if text.strip() else ""
    if first.rstrip(",:;").lower() not in _LOWERABLE or not first[0].isupper():
        return None
    return text[0].lower() + text[1:]


def with_stop(text: str) -> str:
    """`text` ending in punctuation: a full stop is added unless one is there already."""
    stripped = text.rstrip()
    if stripped and stripped[-1] in ".!?…\"')]»":
        return stripped
    return stripped + "."


@dataclass(frozen=True, slots=True)
class PreparedPair:
    """A pair split by the synthesizer conventions, ready for any template of its kind."""

    kind: str  # open, mc, cot, mc_cot
    question: str  # the whole question as written (escaped), for verbatim templates
    answer: str  # the whole answer as written (escaped)
    body: str  # open/cot: question without the cue; mc/mc_cot: the stem
    options: tuple[str, ...] = ()
    correct: int = -1
    reasoning: str = ""
    final: str = ""
    refers: bool = False  # an option refers to the others: keep order, no none-of-the-above


def prepare_pair(pair: Any) -> tuple[PreparedPair | None, str]:
    """(prepared pair, "") or (None, drop reason)."""
    if not isinstance(pair, Mapping):
        return None, "malformed"
    question, answer = pair.get("question"), pair.get("answer")
    if not isinstance(question, str) or not isinstance(answer, str):
        return None, "malformed"
    question, answer = escape_tags(question).strip(), escape_tags(answer).strip()
    if not question or not answer:
        return None, "empty"

    body = question
    cued = question.endswith(_COT_CUE)
    if cued:
        body = question[: -len(_COT_CUE)].rstrip()
    cot = split_chain_of_thought(answer)
    if cot is None and answer.startswith(THEREFORE.strip()):
        return None, "cot_without_reasoning"
    if cued and cot is None:
        return None, "cot_without_final"
    reasoning, final = (cot[0].strip(), cot[1].strip()) if cot else ("", "")
    if cot is not None and not reasoning:
        return None, "cot_without_reasoning"

    mc = split_multiple_choice(body)
    if mc is None:
        if not body:
            return None, "empty"
        kind = "cot" if cot else "open"
        return PreparedPair(kind, question, answer, body, reasoning=reasoning, final=final), ""

    stem, raw_options = mc[0].strip(), [o.strip() for o in mc[1]]
    if not stem:
        return None, "empty"
    if len(raw_options) < 2:
        return None, "mc_too_few_options"
    if len(raw_options) > MAX_OPTIONS - 1:  # room for "None of the above"
        return None, "mc_too_many_options"
    if not all(raw_options):
        return None, "mc_empty_option"
    if len({o.casefold() for o in raw_options}) != len(raw_options):
        return None, "mc_duplicate_options"
    correct = _find_option(final if cot else answer, raw_options)
    if correct < 0:
        return None, "mc_answer_not_in_options"
    refers = any(_REFERS.search(o) for o in raw_options)
    kind = "mc_cot" if cot else "mc"
    return PreparedPair(
        kind, question, answer, stem, tuple(raw_options), correct, reasoning, final, refers
    ), ""


def _find_option(answer: str, options: Sequence[str]) -> int:
    answer = answer.strip()
    if answer in options:
        return options.index(answer)

    def norm(s: str) -> str:
        return s.strip().rstrip(".").strip().casefold()

    hits = [i for i, o in enumerate(options) if norm(o) == norm(answer)]
    return hits[0] if len(hits) == 1 else -1


# --------------------------------------------------------------------------- one pair


def _eligible(t: PairTemplate, p: PreparedPair, layout: Layout | None) -> bool:
    if layout is not None and layout.labeled and t.labeled:
        return False
    fields = template_fields(t.question) | template_fields(t.answer)
    if ("question_lc" in fields or "stem_lc" in fields) and lower_first(p.body) is None:
        return False
    if "reasoning_lc" in fields and lower_first(p.reasoning) is None:
        return False
    if t.options is not None:
        if t.none_of_the_above and p.refers:
            return False
        style = OPTION_STYLES[t.options]
        if style.labels and len(p.options) + t.none_of_the_above > len(style.labels):
            return False
    return True


def eligible_templates(
    p: PreparedPair,
    families: Sequence[str],
    layout: Layout | None = None,
    only: Sequence[str] | None = None,
) -> list[PairTemplate]:
    """Templates of the enabled families (and ids in `only`, when given) that can render
    `p` inside `layout`, in set order."""
    return [
        t
        for t in PAIR_TEMPLATES
        if t.family in families
        and (only is None or t.id in only)
        and p.kind in t.kinds
        and _eligible(t, p, layout)
    ]


@dataclass(frozen=True, slots=True)
class RenderedPair:
    question: str
    answer: str
    template: str
    options: tuple[str, ...] = ()  # multiple choice: the options as listed
    correct: int = -1  # index of the correct option among them


def render_pair(
    p: PreparedPair,
    rng: random.Random,
    cfg: CookConfig,
    stats: Counter[str],
    layout: Layout | None = None,
) -> RenderedPair | None:
    """`p` rendered by a template drawn from `rng`, or None when no enabled template fits."""
    eligible = eligible_templates(p, cfg.families, layout, cfg.templates)
    if not eligible:
        return None
    return apply_template(rng.choice(eligible), p, rng, cfg, stats)


def apply_template(
    t: PairTemplate, p: PreparedPair, rng: random.Random, cfg: CookConfig, stats: Counter[str]
) -> RenderedPair:
    """`p` rendered by template `t` (which must claim `p.kind`)."""
    assert p.kind in t.kinds, (t.id, p.kind)
    if t.family == "verbatim":
        q = t.question.format(question=p.question)
        return RenderedPair(q, t.answer.format(answer=p.answer), t.id, p.options, p.correct)
    if p.kind == "open":
        lc = lower_first(p.body) or p.body
        q = t.question.format(question=p.body, question_lc=lc)
        a = t.answer.format(answer=p.answer, answer_p=with_stop(p.answer))
        return RenderedPair(q, a, t.id)
    fields: dict[str, str] = {}
    if p.kind in ("cot", "mc_cot"):
        fields["reasoning"] = p.reasoning
        fields["reasoning_lc"] = lower_first(p.reasoning) or p.reasoning
    if p.kind == "cot":
        lc = lower_first(p.body) or p.body
        q = t.question.format(question=p.body, question_lc=lc)
        a = t.answer.format(final=p.final, final_p=with_stop(p.final), **fields)
        return RenderedPair(q, a, t.id)

    # multiple choice (with or without chain of thought)
    assert t.options is not None
    style = OPTION_STYLES[t.options]
    options, correct = list(p.options), p.correct
    if cfg.shuffle_options and not p.refers:
        order = list(range(len(options)))
        rng.shuffle(order)
        options = [p.options[i] for i in order]
        correct = order.index(p.correct)
    if t.none_of_the_above:
        # Removing the correct option makes "None of the above" true only when the
        # question had one correct option; keep two distractors so it stays a choice.
        if rng.random() < cfg.none_of_the_above_rate and len(options) >= 3:
            del options[correct]
            stats["none_of_the_above_answers"] += 1
            options.append(NONE_OF_THE_ABOVE)
            correct = len(options) - 1
        else:
            options.append(NONE_OF_THE_ABOVE)
    labels = [option_label(style, i) for i in range(len(options))]
    listed = style.joiner.join(
        style.line.format(label=lab, option=opt) for lab, opt in zip(labels, options, strict=True)
    )
    stem_lc = lower_first(p.body) or p.body
    q = t.question.format(stem=p.body, stem_lc=stem_lc, options=listed)
    option = options[correct]
    a = t.answer.format(label=labels[correct], option=option, option_p=with_stop(option), **fields)
    return RenderedPair(q, a, t.id, tuple(options), correct)


def option_label(style: OptionStyle, i: int) -> str:
    """The label of option `i` in `style` ("" for bullets)."""
    if style.numeric:
        return str(i + 1)
    return style.labels[i] if has_labels(style) else ""


# --------------------------------------------------------------------------- texts


def _segment(text: str, rendered: Sequence[tuple[str, str]], layout: Layout) -> str:
    pairs = layout.separator.join(
        layout.pair.format(q=q, a=a, n=i + 1) for i, (q, a) in enumerate(rendered)
    )
    return layout.frame.format(text=text, pairs=pairs)


def cook_chain(
    records: Sequence[Mapping[str, Any]], cfg: CookConfig, stats: Counter[str] | None = None
) -> dict[str, Any]:
    """Cook texts (oldest first) into one record whose id is the last text's id.

    Returns {"id", "text", "source", "lineage", "template", "template_set"}:
    source is "instruct" when at least one pair was rendered, else "raw" (the
    text as is, tags defused). `template` lists the ids used, in first-use order.
    """
    if not records:
        raise ValueError("cook_chain needs at least one record")
    stats = Counter() if stats is None else stats
    out_id = str(records[-1]["id"])
    rng = seeded_rng(out_id, cfg.seed)
    layouts = [
        lay
        for lay in LAYOUTS
        if lay.family in cfg.layouts and (cfg.templates is None or lay.id in cfg.templates)
    ]
    layout = rng.choice(layouts)

    segments: list[tuple[str, list[tuple[str, str]]]] = []
    used: list[str] = []
    for record in records:
        rendered: list[tuple[str, str]] = []
        pairs = record.get("pairs") or []
        stats["pairs_in"] += len(pairs)
        for raw in pairs:
            prepared, reason = prepare_pair(raw)
            if prepared is None:
                stats[f"dropped_{reason}"] += 1
                continue
            if cfg.max_pairs_per_text is not None and len(rendered) >= cfg.max_pairs_per_text:
                stats["pairs_over_limit"] += 1
                continue
            result = render_pair(prepared, rng, cfg, stats, layout)
            if result is None:
                stats["dropped_no_template"] += 1
                continue
            rendered.append((result.question, result.answer))
            used.append(result.template)
            stats[f"rendered_{prepared.kind}"] += 1
        segments.append((escape_tags(str(record["text"])), rendered))

    num_rendered = sum(len(r) for _, r in segments)
    stats["pairs_rendered"] += num_rendered
    ids = [layout.id] if num_rendered else []
    if num_rendered == 0 and len(segments) == 1:
        text = segments[0][0]  # nothing to add: the raw text, as is
    else:
        parts = [_segment(t.strip(), r, layout) if r else t.strip() for t, r in segments]
        if len(parts) > 1:
            join = rng.choice(CHAIN_JOINS)
            ids.append(join.id)
            text = join.joiner.join(parts)
        else:
            text = parts[0]
    text = escape_tags(text)  # a tag can only form across a field boundary; defuse it too
    assert not has_tag(text), "format tag in cooked text"
    return {
        "id": out_id,
        "text": text,
        "source": "instruct" if num_rendered else "raw",
        "lineage": [str(r["id"]) for r in records],
        "template": list(dict.fromkeys(ids + used)),
        "template_set": TEMPLATE_SET_VERSION,
    }


def cook_record(
    record: Mapping[str, Any], cfg: CookConfig, stats: Counter[str] | None = None
) -> dict[str, Any]:
    """Cook one text with its pairs (a chain of one)."""
    return cook_chain([record], cfg, stats)
