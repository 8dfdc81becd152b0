"""The report's plots: matplotlib (Agg, object API, no pyplot state) to inline SVG.

Rendered here, on the machine that writes the report, so the page needs no
JavaScript, CDN or web font: text is drawn as paths (`svg.fonttype: path`).
Output is deterministic for the same numbers and matplotlib version: ids are
hashed with a fixed salt per figure (distinct salts keep the ids of several
SVGs on one page apart) and the SVG metadata carries no date.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from instructpt.errors import InputError

#: One colour per variant, the same in every plot and table.
#: `base` is no variant: the untouched base model of a run that continues one (eval/base.json).
VARIANT_COLORS = {
    "vanilla": "#7b8794", "mix": "#e08a1e", "instruct": "#1f6fb4", "base": "#c9a66b",
}  # fmt: skip
_EXTRA_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#d62728", "#17becf")
#: Token sources of a mix (instructpt.mix): raw text, cooked instructions, general data.
SOURCE_COLORS = {"raw": "#9aa5b1", "instruct": "#1f6fb4", "general": "#e08a1e"}
WIDTH_IN = 7.6


def variant_color(variant: str, order: Sequence[str]) -> str:
    if variant in VARIANT_COLORS:
        return VARIANT_COLORS[variant]
    extras = [v for v in order if v not in VARIANT_COLORS]
    return _EXTRA_COLORS[extras.index(variant) % len(_EXTRA_COLORS)] if variant in extras else "k"


def _new_figure(height_in: float, width_in: float = WIDTH_IN) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError(
            "the report's plots need matplotlib: pip install 'matplotlib>=3.8'"
        ) from None
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    return fig


def _thousands(axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))


def _style(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=9)
    ax.grid(axis="y", color="#e4e7eb", linewidth=0.8)
    ax.set_axisbelow(True)


def to_svg(fig: Any, name: str, label: str) -> str:
    """The figure as an `<svg>` element for inline use (no XML prolog, no date)."""
    import matplotlib

    buf = io.StringIO()
    rc = {"svg.hashsalt": f"instructpt-{name}", "svg.fonttype": "path", "svg.image_inline": True}
    with matplotlib.rc_context(rc):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    svg = text[text.index("<svg") :]
    label = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return svg.replace("<svg", f'<svg role="img" aria-label="{label}"', 1)


# --------------------------------------------------------------------------- the plots


def pairs_histogram(histogram: Mapping[str, int]) -> str:
    """Texts by number of synthesized pairs (synthesize stats `pairs_per_text_histogram`)."""
    keys = sorted(histogram, key=lambda k: int(k.rstrip("+")))
    fig = _new_figure(2.2, width_in=4.6)
    ax = fig.add_subplot()
    ax.bar(keys, [histogram[k] for k in keys], color=VARIANT_COLORS["instruct"], width=0.7)
    for i, k in enumerate(keys):
        ax.annotate(
            f"{histogram[k]:,}",
            (i, histogram[k]),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_xlabel("pairs kept for the text", fontsize=9)
    ax.set_ylabel("texts", fontsize=9)
    _style(ax)
    return to_svg(fig, "pairs", "texts by number of synthesized pairs")


def token_mix(mix: Mapping[str, Mapping[str, int]]) -> str:
    """Stacked horizontal bars: each variant's tokens by source (mix stats `tokens_<source>`)."""
    variants = list(mix)
    sources = [s for s in SOURCE_COLORS if any(s in mix[v] for v in variants)]
    sources += sorted({s for v in variants for s in mix[v]} - set(sources))
    fig = _new_figure(0.55 * len(variants) + 1.0)
    ax = fig.add_subplot()
    y = list(range(len(variants)))[::-1]
    left = [0] * len(variants)
    extra = iter(_EXTRA_COLORS)
    for source in sources:
        widths = [mix[v].get(source, 0) for v in variants]
        color = SOURCE_COLORS.get(source) or next(extra)
        ax.barh(y, widths, left=left, color=color, height=0.6, label=source)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for yi, total in zip(y, left, strict=True):
        ax.annotate(
            f"{total:,}",
            (total, yi),
            va="center",
            fontsize=8,
            xytext=(3, 0),
            textcoords="offset points",
        )
    ax.set_yticks(y, variants)
    ax.set_xlabel("tokens", fontsize=9)
    _thousands(ax.xaxis)
    ax.set_xlim(0, max([*left, 1]) * 1.15)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _style(ax)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#e4e7eb", linewidth=0.8)
    return to_svg(fig, "mix", "tokens by source for each variant")


def loss_curves(curves: Mapping[str, Sequence[Mapping[str, Any]]], order: Sequence[str]) -> str:
    """Training loss against tokens seen, one line per variant (pretrain `metrics.jsonl`)."""
    fig = _new_figure(3.2)
    ax = fig.add_subplot()
    for variant in [v for v in order if v in curves]:
        rows = curves[variant]
        ax.plot(
            [r["tokens"] for r in rows],
            [r["loss"] for r in rows],
            label=variant,
            color=variant_color(variant, order),
            linewidth=1.8,
            marker="o" if len(rows) < 30 else None,
            markersize=3,
        )
    ax.set_xlabel("tokens seen", fontsize=9)
    _thousands(ax.xaxis)
    ax.set_ylabel("training loss", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    _style(ax)
    return to_svg(fig, "loss", "training loss against tokens seen for each variant")


EvalGroup = tuple[str, str, Mapping[str, tuple[float, "float | None"]], "float | None"]


def eval_bars(groups: Sequence[EvalGroup]) -> str:
    """Grouped bars in percent: one group per (task, metric), one bar per variant, ±1 stderr.

    `groups` holds (task, metric, {variant: (value, stderr or None)}, chance or
    None); a missing stderr draws no error bar rather than a zero one, and a
    known chance level is a dashed line across its group.
    """
    order = list(dict.fromkeys(v for _, _, scores, _ in groups for v in scores))
    fig = _new_figure(3.2)
    ax = fig.add_subplot()
    width = 0.8 / max(len(order), 1)
    for j, variant in enumerate(order):
        xs, values, err_x, errs = [], [], [], []
        for i, (_, _, scores, _) in enumerate(groups):
            if variant not in scores:
                continue
            value, stderr = scores[variant]
            x = i - 0.4 + width * (j + 0.5)
            xs.append(x)
            values.append(100 * value)
            if stderr is not None:
                err_x.append(x)
                errs.append((100 * value, 100 * stderr))
        color = variant_color(variant, order)
        ax.bar(xs, values, width=width * 0.92, color=color, label=variant)
        if errs:
            ax.errorbar(
                err_x,
                [e[0] for e in errs],
                yerr=[e[1] for e in errs],
                fmt="none",
                ecolor="#1f2933",
                elinewidth=1,
                capsize=3,
            )
        tops = dict(zip(err_x, (v + e for v, e in errs), strict=True))
        for x, v in zip(xs, values, strict=True):
            ax.annotate(
                f"{v:.1f}",
                (x, tops.get(x, v)),
                ha="center",
                va="bottom",
                fontsize=7,
                color="#1f2933",
                xytext=(0, 2),
                textcoords="offset points",
            )
    chance_drawn = False
    for i, (_, _, _, chance) in enumerate(groups):
        if chance is not None:
            ax.hlines(
                100 * chance,
                i - 0.45,
                i + 0.45,
                colors="#9b1c1c",
                linestyles="dashed",
                linewidth=1,
                label=None if chance_drawn else "chance",
            )
            chance_drawn = True
    ax.set_xticks(range(len(groups)), [f"{task}\n{metric}" for task, metric, _, _ in groups])
    ax.set_ylabel("score (%), ±1 stderr", fontsize=9)
    top = max((100 * (v + (s or 0)) for _, _, sc, _ in groups for v, s in sc.values()), default=1)
    ax.set_ylim(0, min(108, max(5, top * 1.15)))
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _style(ax)
    return to_svg(fig, "eval", "evaluation scores per task for each variant, with error bars")
