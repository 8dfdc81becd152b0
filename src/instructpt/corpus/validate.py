"""Turn a `RawRecord` into a `Document`, or say precisely why it cannot be one.

Follows the filter convention of the pipeline: `(document, reason, detail)`
where `reason` is None for a kept record. Reasons are stable strings that
appear in stats and in the quarantine file.
"""

from __future__ import annotations

from typing import Any

from instructpt.core.shards import hashed_id
from instructpt.corpus.readers import RawRecord
from instructpt.records import Document

#: Every reason a record can be skipped for, in the order they are checked.
SKIP_REASONS = (
    "unreadable_file",
    "malformed_json",
    "invalid_utf8",
    "line_too_long",
    "not_an_object",
    "missing_text",
    "text_not_string",
    "empty_text",
    "too_short",
    "too_long",
    "bad_id",
    "duplicate_id",
    "unserializable",
)


def to_document(
    rec: RawRecord,
    text_field: str,
    id_field: str | None,
    min_chars: int,
    max_chars: int,
) -> tuple[Document | None, str | None, str]:
    if rec.error is not None:
        return None, rec.error, rec.detail
    data = rec.data
    if not isinstance(data, dict):
        return None, "not_an_object", f"expected a JSON object, got {type(data).__name__}"
    if text_field not in data or data[text_field] is None:
        fields = ", ".join(sorted(map(str, data))[:10]) or "none"
        return None, "missing_text", f"no field '{text_field}' (fields: {fields}); set --text-field"
    text = data[text_field]
    if not isinstance(text, str):
        return None, "text_not_string", f"'{text_field}' is {type(text).__name__}, not a string"
    if not text or text.isspace():
        return None, "empty_text", "text is empty or whitespace only"
    if min_chars > 1 and len(text) >= min_chars and len(text.strip()) < min_chars:
        return None, "too_short", f"{len(text.strip())} chars < min_chars {min_chars}"
    if len(text) < min_chars:
        return None, "too_short", f"{len(text)} chars < min_chars {min_chars}"
    if len(text) > max_chars:
        return None, "too_long", f"{len(text)} chars > max_chars {max_chars}"

    doc_id, problem = _document_id(data, id_field, rec)
    if problem:
        return None, "bad_id", problem
    meta: dict[str, Any] = {}
    given_meta = data.get("meta")
    if isinstance(given_meta, dict):
        meta.update(given_meta)
    for key, value in data.items():
        if key not in (text_field, id_field, "meta"):
            meta[key] = value
    meta["source"] = rec.source
    if rec.position is not None:
        meta[rec.unit] = rec.position
    return Document(id=doc_id, text=text, meta=meta), None, ""


def _document_id(data: dict[str, Any], id_field: str | None, rec: RawRecord) -> tuple[str, str]:
    if id_field is None or data.get(id_field) is None:
        return hashed_id(rec.source, rec.position), ""
    value = data[id_field]
    if isinstance(value, bool) or not isinstance(value, str | int):
        return "", f"'{id_field}' is {type(value).__name__}; ids must be strings or integers"
    doc_id = str(value)
    if not doc_id.strip():
        return "", f"'{id_field}' is empty"
    if len(doc_id) > 512:
        return "", f"'{id_field}' is {len(doc_id)} chars long; ids are limited to 512"
    return doc_id, ""
