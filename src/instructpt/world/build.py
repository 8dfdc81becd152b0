"""`build_world`: config -> entities, their texts and their ground-truth QA.

Pure and deterministic: the same `WorldConfig` gives the same `World`, object
for object, on any machine (only `random.Random` seeded through sha256 is
used, never the global generator or `hash()`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from instructpt.world.config import WorldConfig
from instructpt.world.entities import Entities, generate_entities
from instructpt.world.facts import Entity, Index
from instructpt.world.qa import Pools, QAPair, entity_qa
from instructpt.world.render import EntityText, render_entity


@dataclass(frozen=True, slots=True)
class World:
    """A whole demo world: structured entities, one text each, and their QA pairs.

    `texts` are in entity order (countries, cities, universities, companies,
    people; ids ascending within a type); `qa` follows the same entity order.
    """

    config: WorldConfig
    entities: Entities
    texts: tuple[EntityText, ...]
    qa: tuple[QAPair, ...]

    def all_entities(self) -> Iterator[Entity]:
        e = self.entities
        yield from e.countries
        yield from e.cities
        yield from e.universities
        yield from e.companies
        yield from e.people


def build_world(cfg: WorldConfig) -> World:
    """Generate the world described by `cfg`; same config, same world."""
    entities = generate_entities(cfg)
    index = Index.of(entities)
    pools = Pools.of(entities)
    texts: list[EntityText] = []
    qa: list[QAPair] = []
    for world_entities in (
        entities.countries,
        entities.cities,
        entities.universities,
        entities.companies,
        entities.people,
    ):
        for entity in world_entities:
            texts.append(render_entity(entity, index, cfg.seed, cfg.full_names))
            for k in range(1, cfg.texts_per_entity):
                # Another seeded draw of templates and sentence order: the same facts,
                # phrased and ordered differently.
                extra = render_entity(entity, index, cfg.seed + k * 1_000_003, cfg.full_names)
                texts.append(dataclasses.replace(extra, rendering=k))
            qa.extend(entity_qa(entity, index, pools, cfg.seed))
    return World(cfg, entities, tuple(texts), tuple(qa))
