"""The error the emulator raises internally and renders as Salesforce's error array."""

from __future__ import annotations

NOT_FOUND = "The requested resource does not exist"


class ApiError(Exception):
    """A REST failure: HTTP status plus ``[{"message","errorCode","fields"?}]`` entries."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[str] | None = None,
        detail: dict | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.detail = detail or {}  # extra keys of a single-record error (``duplicateResut``)

    def body(self) -> list[dict]:
        entry: dict = {**self.detail, "message": self.message, "errorCode": self.code}
        if self.fields is not None:
            entry["fields"] = list(self.fields)
        return [entry]

    def collection_error(self) -> dict:
        """The same error as sObject Collections report it (``statusCode`` key)."""
        return {"statusCode": self.code, "message": self.message, "fields": list(self.fields or [])}


def bad_request(code: str, message: str, fields: list[str] | None = None) -> ApiError:
    return ApiError(400, code, message, fields)


def not_found(message: str = NOT_FOUND) -> ApiError:
    return ApiError(404, "NOT_FOUND", message)


def json_type_error(expected: str, value: object) -> ApiError:
    """A value of the wrong JSON type, worded like Salesforce's Jackson-based parser."""
    if isinstance(value, bool):
        kind = "VALUE_TRUE" if value else "VALUE_FALSE"
    elif isinstance(value, int):
        kind = "VALUE_NUMBER_INT"
    elif isinstance(value, float):
        kind = "VALUE_NUMBER_FLOAT"
    elif isinstance(value, str):
        kind = "VALUE_STRING"
    elif isinstance(value, list):
        kind = "START_ARRAY"
    else:
        kind = "START_OBJECT"
    shown = value if isinstance(value, (str, int, float)) else ""
    return bad_request(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {expected} from {kind} value {shown} "
        "or request may be missing a required field",
    )
