"""The seeded demo world: fictional entities, encyclopedia texts, ground-truth QA.

    world = build_world(WorldConfig(seed=1))   # pure, deterministic
    summary = write_world(world, out_dir)      # documents/qa/entities .jsonl

Modules, one job each: `names` (syllable names), `vocab` (closed value sets),
`entities` (structure and groups), `facts` (displayed values), `phrasings`
(all templates, as data), `render` (texts), `qa` (ground truth), `build`
and `write` (the world, its files), `stage` (the `world` stage with its manifest).
"""

from instructpt.world.build import World, build_world
from instructpt.world.stage import generate_world
from instructpt.world.write import summarize, write_world

__all__ = ["World", "build_world", "generate_world", "summarize", "write_world"]
