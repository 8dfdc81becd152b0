"""Pair quality filters: grounding and form, near-duplicates, decontamination.

`filter_pairs(cfg, synth_dir, out_dir)` runs them as a stage between
synthesize (or mine) and cook; see stage.py.
"""

from instructpt.filter.config import FilterConfig
from instructpt.filter.stage import FilterResult, PairFilter, filter_pairs, filter_records

__all__ = ["FilterConfig", "FilterResult", "PairFilter", "filter_pairs", "filter_records"]
