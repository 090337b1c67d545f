"""Reading a duplicate rule's refusal (``DUPLICATES_DETECTED``): the records it matched.

Orgs with the standard Lead and Contact duplicate rules set to block refuse a create that
matches an existing record; the single-record answer names the matches under
``duplicateResut`` (sic) in real captures and ``duplicateResult`` in some documentation: both
are read. sObject Collections give the code only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from integrations.errors import RemoteError

CODE = "DUPLICATES_DETECTED"


@dataclass(frozen=True)
class Duplicate:
    """A record a duplicate rule matched, and the rule."""

    sobject: str
    id: str
    rule: str


def matched(error: RemoteError) -> list[Duplicate]:
    """The records the rule matched, best first; empty for any other error."""
    if error.error_code != CODE or not isinstance(error.body, list):
        return []
    found = []
    for entry in error.body:
        if not isinstance(entry, dict):
            continue
        detail: Any = entry.get("duplicateResut") or entry.get("duplicateResult") or {}
        rule = str(detail.get("duplicateRule") or "") if isinstance(detail, dict) else ""
        results = detail.get("matchResults") if isinstance(detail, dict) else None
        for result in results if isinstance(results, list) else []:
            records = result.get("matchRecords") if isinstance(result, dict) else None
            for item in records if isinstance(records, list) else []:
                record = item.get("record") if isinstance(item, dict) else None
                if isinstance(record, dict) and isinstance(record.get("Id"), str):
                    sobject = (record.get("attributes") or {}).get("type") or result.get(
                        "entityType"
                    )
                    found.append(
                        (
                            item.get("matchConfidence") or 0,
                            Duplicate(str(sobject), record["Id"], rule),
                        )
                    )
    return [d for _, d in sorted(found, key=lambda pair: -float(pair[0]))]
