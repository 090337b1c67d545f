"""The emulator's internal request and reply, shared by the REST resources and composite."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import ApiError

MISSING = object()  # no request body at all
VERSION = re.compile(r"v(\d{2})\.0")
OLDEST_VERSION, NEWEST_VERSION = 31, 66


@dataclass
class ApiRequest:
    method: str
    segments: list[str]  # path segments after the version, decoded, no trailing empty one
    version: str  # "59.0"
    params: list[tuple[str, str]] = field(default_factory=list)
    body: object = MISSING
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)

    @property
    def allow_save(self) -> bool:
        """``Sforce-Duplicate-Rule-Header: allowSave=true``: save past duplicate rules that only
        alert (rules that block still refuse)."""
        header = self.headers.get("sforce-duplicate-rule-header", "")
        return "allowsave=true" in header.replace(" ", "").lower()


@dataclass
class Reply:
    status: int
    body: object = None  # JSON-able; ignored for 204/304
    headers: dict[str, str] = field(default_factory=dict)


def version_of(segment: str) -> str | None:
    """``v59.0`` -> ``59.0`` when the emulator serves that version, else None."""
    match = VERSION.fullmatch(segment)
    if match and OLDEST_VERSION <= int(match.group(1)) <= NEWEST_VERSION:
        return f"{match.group(1)}.0"
    return None


def method_not_allowed(method: str, allowed: str) -> ApiError:
    return ApiError(
        405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}"
    )
