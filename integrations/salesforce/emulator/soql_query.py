"""A parsed SOQL query and how it runs against an org: field values, order, rows.

The parser builds :class:`Query`; SOQL and SOSL results are selected and rendered here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .schema import ID_TYPES, NUMBER_TYPES, TEXT_TYPES, FieldDef, SObjectDef
from .values import parse_datetime

if TYPE_CHECKING:
    from .org import Org


@dataclass
class Path:
    """A selected or filtered field: direct, or one hop through a relationship."""

    text: str
    field: FieldDef  # the field on the queried object (the lookup, for a relationship)
    target_field: str | None = None  # field name on the parent, for a relationship
    target_type: str = "string"  # the parent field's type, for a relationship

    @property
    def type(self) -> str:
        return self.target_type if self.target_field else self.field.type

    @property
    def key(self) -> str:
        return f"{self.field.name}.{self.target_field}" if self.target_field else self.field.name


Condition = Callable[[dict], bool]


@dataclass
class Query:
    sobject: SObjectDef
    count: bool = False
    paths: list[Path] = field(default_factory=list)
    where: Condition | None = None
    order: list[tuple[Path, bool, bool]] = field(default_factory=list)  # path, desc, nulls first
    limit: int | None = None
    offset: int | None = None


def value_getter(org: Org, path: Path) -> Callable[[dict], object]:
    """Value of ``path`` on a stored record, normalised for comparison."""
    kind = path.type

    def norm(value: object) -> object:
        if value is None:
            return None
        if kind in TEXT_TYPES:
            return str(value).lower()
        if kind in NUMBER_TYPES:
            return float(value)  # type: ignore[arg-type]
        if kind == "datetime":
            return parse_datetime(value)  # type: ignore[arg-type]
        return value

    if not path.target_field:
        name = path.field.name
        return lambda rec: norm(rec.get(name))
    lookup_name = path.field.name
    target = path.target_field
    return lambda rec: norm(parent_value(org, rec.get(lookup_name), target))


def parent_value(org: Org, parent_id: object, field_name: str) -> object:
    if not parent_id:
        return None
    found = org.lookup(parent_id)  # type: ignore[arg-type]
    if found is None:
        return None
    sobject, rec = found
    if field_name == "Type":
        return sobject
    return rec.get(field_name)


def order_rows(query: Query, org: Org, rows: list[dict]) -> list[dict]:
    """Stable multi-key sort; text case-insensitive, nulls placed per NULLS FIRST/LAST."""
    for path, desc, nulls_first in reversed(query.order):
        get = value_getter(org, path)
        null_rank = (1 if nulls_first else 0) if desc else (0 if nulls_first else 1)

        def key(rec: dict, get=get, null_rank=null_rank, is_id=path.type in ID_TYPES) -> tuple:
            value = get(rec)
            if value is None:
                return (null_rank, 0)
            return (1 - null_rank, value[:15] if is_id else value)  # type: ignore[index]

        rows = sorted(rows, key=key, reverse=desc)
    return rows


def select(org: Org, query: Query, *, include_deleted: bool) -> list[dict]:
    """Stored records matching the query, ordered, with OFFSET and LIMIT applied."""
    rows = [
        rec
        for rec in org.table(query.sobject.name)
        if (include_deleted or not rec.get("IsDeleted"))
        and (query.where is None or query.where(rec))
    ]
    if query.order:
        rows = order_rows(query, org, rows)
    if query.offset:
        rows = rows[query.offset :]
    if query.limit is not None:
        rows = rows[: query.limit]
    return rows


def render_row(org: Org, query: Query, rec: dict, version: str) -> dict:
    """A result row: attributes, then the selected fields; parents nested under their name."""
    out: dict = {"attributes": org.attributes(query.sobject.name, rec["Id"], version)}
    for path in query.paths:
        lookup = path.field
        if not path.target_field:
            out[lookup.name] = rec.get(lookup.name)
            continue
        rel = lookup.relationship_name or lookup.name
        parent_id = rec.get(lookup.name)
        found = org.lookup(parent_id) if parent_id else None
        if found is None:
            out.setdefault(rel, None)
            continue
        sobject, parent = found
        nested = out.get(rel) or {"attributes": org.attributes(sobject, parent["Id"], version)}
        nested[path.target_field] = (
            sobject if path.target_field == "Type" else parent.get(path.target_field)
        )
        out[rel] = nested
    return out
