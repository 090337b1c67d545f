"""Links a person can open: a call's page in the Aircall Dashboard (``AIRCALL_CALL_URL``).

Aircall's own ``direct_link`` is an API address, which answers only with API credentials."""

from __future__ import annotations

from urllib.parse import quote


def call_page(template: str, call_id: object) -> str | None:
    """The template with the call id in place of ``{id}``; None when no template is set."""
    if not template or call_id is None:
        return None
    return template.replace("{id}", quote(str(call_id), safe=""))
