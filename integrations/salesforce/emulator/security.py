"""Field-level security of the integration user: fields its profile hides or makes read-only.

Every API request runs as the integration user (contract 1.2), so while one is being served
(``api_request``) a hidden field is absent from describe and is "No such column" to SOQL, SOSL
and writes, and a read-only one is neither createable nor updateable. Tests and the demo that
call ``Org`` methods directly act as an administrator and see every field.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .schema import FieldDef, SObjectDef

# Task and Event call fields are "not subject to field-level security" (contract 5.2).
_CALL_FIELDS = ("Task", "Event")


@dataclass
class FieldSecurity:
    hidden: set[tuple[str, str]] = field(default_factory=set)  # (object, field), canonical names
    read_only: set[tuple[str, str]] = field(default_factory=set)
    _serving: int = 0  # API requests being served (composite nests them); under the org's lock

    @contextmanager
    def api_request(self) -> Iterator[None]:
        self._serving += 1
        try:
            yield
        finally:
            self._serving -= 1

    @staticmethod
    def check_permissionable(obj: SObjectDef, f: FieldDef) -> None:
        """Salesforce sets field-level security only on optional, writable fields."""
        if not f.describe()["permissionable"]:
            raise ValueError(f"{obj.name}.{f.name} is not subject to field-level security")
        if obj.name in _CALL_FIELDS and f.name.startswith("Call"):
            raise ValueError(f"{obj.name}.{f.name} is not subject to field-level security")

    def visible(self, obj: SObjectDef, f: FieldDef | None) -> FieldDef | None:
        """``f`` as the request sees it: None when hidden from the integration user."""
        if f is None or (self._serving and (obj.name, f.name) in self.hidden):
            return None
        return f

    def settable(self, obj: SObjectDef, f: FieldDef, *, creating: bool) -> bool:
        if self._serving and (obj.name, f.name) in self.read_only:
            return False
        return f.createable if creating else f.updateable

    def fields(self, obj: SObjectDef) -> list[FieldDef]:
        return [f for f in obj.fields.values() if self.visible(obj, f) is not None]

    def describe(self, obj: SObjectDef, version: str) -> dict:
        """The object's describe as the integration user gets it."""
        body = obj.describe(version)
        shown = []
        for spec in body["fields"]:
            key = (obj.name, spec["name"])
            if key in self.hidden:
                continue
            if key in self.read_only:
                spec = {**spec, "createable": False, "updateable": False}
            shown.append(spec)
        body["fields"] = shown
        return body
