"""Model-free pair mining from raw text (AdaptLLM's reading-comprehension patterns).

    pairs, stats = mine_text(doc_id, text, MineConfig())     # one text
    result = mine(MineConfig(), corpus_dir, out_dir)          # a stage, resumable

Modules, one job each: `sentences` (the splitter), `families` (one function
per task family), `miner` (config, checks and selection for one text),
`stage` (documents -> `Synthesis` shards, a drop-in for synthesize's output).
"""

from instructpt.mine.config import MineConfig
from instructpt.mine.miner import ALL_FAMILIES, MINER_VERSION, mine_text
from instructpt.mine.sentences import split_sentences
from instructpt.mine.stage import MineResult, mine

__all__ = [
    "ALL_FAMILIES",
    "MINER_VERSION",
    "MineConfig",
    "MineResult",
    "mine",
    "mine_text",
    "split_sentences",
]
