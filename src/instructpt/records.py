"""Record types that cross stage boundaries; their field names are the contract.

Small slotted dataclasses rather than pydantic models: millions of them are
created per shard, and their validation happens once, at the corpus edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Document:
    """One raw text. `id` is stable: the given id, else a hash of source and position."""

    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies meta and was half of ingest's time.
        return {"id": self.id, "text": self.text, "meta": self.meta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        return cls(id=data["id"], text=data["text"], meta=data.get("meta") or {})
