"""Links a person can open: a record's Lightning page on the org's instance."""

from __future__ import annotations

from urllib.parse import quote


def record_link(base: str, sobject: str, record_id: str) -> str:
    """``{instance}/lightning/r/{Object}/{Id}/view``, the page Salesforce itself links to."""
    return (
        f"{base.rstrip('/')}/lightning/r/{quote(sobject, safe='')}/{quote(record_id, safe='')}/view"
    )
