"""`write_world`: a `World` -> three JSON-lines files and a summary of counts.

Files (one record per line, fixed field order, `ensure_ascii=False`, "\\n"
endings; the same world gives byte-identical files):
- `documents.jsonl`: `{"id", "text", "meta": {"entity_type", "group"}}`, the
  `Document` contract of the corpus stage, in entity order;
- `qa.jsonl`: `{"id", "entity_id", "group", "kind", "attribute", "question",
  "answer", "final", "options"}`; `options` is a list for `mc` and null otherwise;
- `entities.jsonl`: `{"id", "type", "group", "name", "attributes", "links"}`;
  `attributes` holds displayed values, `links` the ids of related entities.
Each file is written atomically, so a killed run never leaves half a file.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from instructpt.core.atomic import atomic_write_text
from instructpt.world.build import World
from instructpt.world.entities import City, Company, Country, Person, University
from instructpt.world.facts import Entity, Index, entity_type, person_facts, place_facts

DOCUMENTS_FILE = "documents.jsonl"
QA_FILE = "qa.jsonl"
ENTITIES_FILE = "entities.jsonl"


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in records)


def _links(entity: Entity) -> dict[str, Any]:
    if isinstance(entity, Person):
        return {
            "birth_city": entity.birth_city_id,
            "university": entity.university_id,
            "employer": entity.employer_id,
            "residence_city": entity.residence_city_id,
            "relations": [{"kind": r.kind, "id": r.person_id} for r in entity.relations],
        }
    if isinstance(entity, Country):
        return {"capital": entity.capital_id}
    if isinstance(entity, City):
        return {"country": entity.country_id}
    assert isinstance(entity, University | Company)
    return {"city": entity.city_id}


def _entity_record(entity: Entity, index: Index) -> dict[str, Any]:
    if isinstance(entity, Person):
        facts = person_facts(entity, index)
        attributes: dict[str, Any] = {
            k: v for k, v in facts.items() if not k.startswith("a_") and k != "name"
        }
        attributes["gender"] = entity.gender
    else:
        facts = place_facts(entity, index)
        attributes = {k: v for k, v in facts.items() if not k.startswith("a_") and k != "name"}
    return {
        "id": entity.id,
        "type": entity_type(entity),
        "group": entity.group,
        "name": entity.name,
        "attributes": attributes,
        "links": _links(entity),
    }


def world_records(world: World) -> dict[str, list[dict[str, Any]]]:
    """The records of each output file, in file order (also handy in tests)."""
    index = Index.of(world.entities)
    documents = [
        {
            "id": t.doc_id,
            "text": t.text,
            "meta": {"entity_type": t.entity_type, "group": t.group}
            | ({"entity_id": t.entity_id} if t.rendering else {}),
        }
        for t in world.texts
    ]
    qa = [
        {
            "id": q.id,
            "entity_id": q.entity_id,
            "group": q.group,
            "kind": q.kind,
            "attribute": q.attribute,
            "question": q.question,
            "answer": q.answer,
            "final": q.final,
            "options": list(q.options) if q.options is not None else None,
        }
        for q in world.qa
    ]
    entities = [_entity_record(e, index) for e in world.all_entities()]
    return {DOCUMENTS_FILE: documents, QA_FILE: qa, ENTITIES_FILE: entities}


def summarize(world: World) -> dict[str, int]:
    """Counts per entity type, per group, per QA kind, and words of all texts."""
    summary: dict[str, int] = {"documents": len(world.texts)}
    mains = [t for t in world.texts if not t.rendering]  # one per entity
    for key, n in sorted(Counter(t.entity_type for t in mains).items()):
        summary[f"entities.{key}"] = n
    for key, n in sorted(Counter(t.group for t in mains).items()):
        summary[f"group.{key}"] = n
    for key, n in sorted(Counter(p.group for p in world.entities.people).items()):
        summary[f"people.{key}"] = n
    summary["qa"] = len(world.qa)
    for key, n in sorted(Counter(q.kind for q in world.qa).items()):
        summary[f"qa.{key}"] = n
    summary["words"] = sum(len(t.text.split()) for t in world.texts)
    summary["words.person"] = sum(
        len(t.text.split()) for t in world.texts if t.entity_type == "person"
    )
    return summary


def write_world(world: World, out_dir: Path) -> dict[str, int]:
    """Write documents, QA and entities under `out_dir` atomically; returns `summarize`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, records in world_records(world).items():
        atomic_write_text(out_dir / name, _jsonl(records))
    return summarize(world)
