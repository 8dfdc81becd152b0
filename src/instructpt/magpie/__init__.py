"""Magpie: instruction data from an aligned chat model with no seed data (Xu et al. 2024)."""

from instructpt.magpie.config import MagpieConfig
from instructpt.magpie.stage import MagpieResult, magpie

__all__ = ["MagpieConfig", "MagpieResult", "magpie"]
