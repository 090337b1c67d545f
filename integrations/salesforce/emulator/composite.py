"""Composite (``/composite``) and sObject Collections (``/composite/sobjects``).

Both run inside one org transaction, count as one API call (the HTTP layer counts the outer
request only), and roll back on failure when ``allOrNone`` is set.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from ..ids import normalize
from .errors import ApiError, bad_request
from .wire import MISSING, ApiRequest, Reply, method_not_allowed, version_of

if TYPE_CHECKING:
    from .org import Org

Handler = Callable[["Org", ApiRequest], Reply]

MAX_SUBREQUESTS = 25
MAX_QUERIES = 5
MAX_COLLECTION = 200
METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})
ITEM_KEYS = frozenset({"method", "url", "referenceId", "body", "httpHeaders"})
ENVELOPE_KEYS = frozenset({"allOrNone", "collateSubrequests", "compositeRequest"})
FORBIDDEN_HEADERS = frozenset({"accept", "authorization", "content-type"})
REFERENCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*")
REFERENCE = re.compile(r"@\{([^}]*)\}")
URL = re.compile(r"/services/data/(v\d+\.\d)(/.*)?")
ROLLED_BACK = (
    "The transaction was rolled back since another operation in the same transaction failed."
)
ALL_OR_NONE = (
    "Record rolled back because not all records were valid and the request was using AllOrNone "
    "header"
)


class Unresolved(Exception):
    """A ``@{ref.path}`` with no value; the message is Salesforce's."""


def _input_error(message: str) -> ApiError:
    return bad_request("INVALID_API_INPUT", message)


def _flag(value: object, name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(
            "JSON_PARSER_ERROR", f"Cannot deserialize instance of boolean for field {name}"
        )
    return value


def _check_envelope(body: object) -> tuple[bool, list[dict]]:
    if not isinstance(body, dict):
        raise bad_request("JSON_PARSER_ERROR", "Cannot deserialize the composite request body")
    for key in body:
        if key not in ENVELOPE_KEYS:
            raise bad_request("JSON_PARSER_ERROR", f'Unrecognized field "{key}"')
    all_or_none = _flag(body.get("allOrNone"), "allOrNone")
    _flag(body.get("collateSubrequests"), "collateSubrequests")
    items = body.get("compositeRequest")
    if not isinstance(items, list) or not items:
        raise _input_error("The compositeRequest field is required and may not be empty.")
    if len(items) > MAX_SUBREQUESTS:
        raise _input_error(
            f"Received invalid request. Maximum number of subrequests is {MAX_SUBREQUESTS}."
        )
    seen: set[str] = set()
    queries = 0
    for item in items:
        if not isinstance(item, dict):
            raise bad_request("JSON_PARSER_ERROR", "Each subrequest must be a JSON object")
        for key in item:
            if key not in ITEM_KEYS:
                raise bad_request("JSON_PARSER_ERROR", f'Unrecognized field "{key}"')
        method, url, ref = item.get("method"), item.get("url"), item.get("referenceId")
        if method not in METHODS:
            raise _input_error(
                f"Invalid method {method!r}; use one of GET, POST, PATCH, PUT, DELETE."
            )
        if not isinstance(ref, str) or not REFERENCE_ID.fullmatch(ref):
            raise _input_error(f"Invalid referenceId {ref!r}: letters, digits and _ only.")
        if ref in seen:
            raise _input_error(f"Duplicate referenceId provided in the request: {ref}")
        seen.add(ref)
        if not isinstance(url, str):
            raise _input_error(f"The url of subrequest {ref} is required.")
        match = URL.fullmatch(urlsplit(url).path)
        parts = (match.group(2) or "/").strip("/").split("/") if match else [""]
        collection = parts[:2] == ["composite", "sobjects"]
        if parts[0] not in ("sobjects", "query", "queryAll") and not collection:
            raise _input_error(
                f"The url of subrequest {ref} must start with /services/data/vXX.X/ and name an "
                "sObject, query, queryAll or sObject Collections resource."
            )
        if collection or parts[0] in ("query", "queryAll"):
            queries += 1
        headers = item.get("httpHeaders") or {}
        if not isinstance(headers, dict) or FORBIDDEN_HEADERS & {h.lower() for h in headers}:
            raise _input_error(
                f"Subrequest {ref} may not set the Accept, Authorization or Content-Type headers."
            )
        if (
            "body" in item
            and item["body"] is not None
            and not isinstance(item["body"], (dict, list))
        ):
            raise bad_request("JSON_PARSER_ERROR", f"The body of subrequest {ref} must be JSON")
    if queries > MAX_QUERIES:
        raise _input_error(
            f"Received invalid request. A composite request may contain at most {MAX_QUERIES} "
            "query or sObject Collections subrequests."
        )
    return all_or_none, items


def _lookup(expression: str, results: dict[str, Reply]) -> object:
    ref = re.match(r"[A-Za-z0-9_]+", expression)
    if ref is None or ref.group() not in results or results[ref.group()].status >= 400:
        name = ref.group() if ref else expression
        raise Unresolved(f"Invalid reference specified. No value for {expression} found in {name}.")
    value: object = results[ref.group()].body
    rest = expression[ref.end() :]
    for part in re.finditer(r"\.([^.\[]+)|\[(\d+)\]|(.)", rest):
        key, index, junk = part.groups()
        found = True
        if junk is not None:
            found = False
        elif key is not None:
            found = isinstance(value, dict) and key in value
            value = value.get(key) if found else None  # type: ignore[union-attr]
        else:
            position = int(index)
            found = isinstance(value, list) and position < len(value)
            value = value[position] if found else None  # type: ignore[index]
        if not found:
            raise Unresolved(
                f"Invalid reference specified. No value for {expression} found in {ref.group()}."
            )
    if value is None:
        raise Unresolved(
            f"Invalid reference specified. No value for {expression} found in {ref.group()}."
        )
    return value


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _substitute(value: object, results: dict[str, Reply]) -> object:
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value)
        if whole:
            return _lookup(whole.group(1), results)
        return REFERENCE.sub(lambda m: _text(_lookup(m.group(1), results)), value)
    if isinstance(value, dict):
        return {k: _substitute(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, results) for v in value]
    return value


def _subrequest(org: Org, handle: Handler, item: dict, results: dict[str, Reply]) -> Reply:
    try:
        url = _text(_substitute(item["url"], results))
        body = _substitute(item["body"], results) if item.get("body") is not None else MISSING
    except Unresolved as exc:
        return Reply(400, [{"errorCode": "PROCESSING_HALTED", "message": str(exc)}])
    parts = urlsplit(url)
    match = URL.fullmatch(parts.path)
    version = version_of(match.group(1)) if match else None
    if version is None or match is None:
        return Reply(
            404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
        )
    raw = (match.group(2) or "/").split("/")[1:]
    while raw and raw[-1] == "":
        raw.pop()
    request = ApiRequest(
        method=item["method"],
        segments=[unquote(s) for s in raw],
        version=version,
        params=parse_qsl(parts.query, keep_blank_values=True),
        body=body,
        headers={k.lower(): str(v) for k, v in (item.get("httpHeaders") or {}).items()},
    )
    return handle(org, request)


def run(org: Org, req: ApiRequest, handle: Handler) -> Reply:
    all_or_none, items = _check_envelope(None if req.body is MISSING else req.body)
    results: dict[str, Reply] = {}
    replies: list[Reply] = []
    with org.transaction() as tx:
        failed = None
        for n, item in enumerate(items):
            reply = _subrequest(org, handle, item, results)
            results[item["referenceId"]] = reply
            replies.append(reply)
            if all_or_none and reply.status >= 400:
                failed = n
                break
        if failed is not None:
            tx.rollback()
            halted = [{"errorCode": "PROCESSING_HALTED", "message": ROLLED_BACK}]
            replies = [replies[n] if n == failed else Reply(400, halted) for n in range(len(items))]
    out = []
    for item, reply in zip(items, replies, strict=True):
        out.append(
            {
                "body": None if reply.status in (204, 304) else reply.body,
                "httpHeaders": dict(reply.headers),
                "httpStatusCode": reply.status,
                "referenceId": item["referenceId"],
            }
        )
    return Reply(200, {"compositeResponse": out})


# -- sObject Collections ---------------------------------------------------------------------


def collections(org: Org, req: ApiRequest, method: str, rest: list[str]) -> Reply:
    if len(rest) == 2:
        if method != "PATCH":
            raise method_not_allowed(method, "PATCH")
        records, all_or_none = _records(req)
        sobject, field_name = rest
        return Reply(
            200,
            _apply(org, records, all_or_none, lambda r: _upsert_one(org, sobject, field_name, r)),
        )
    if rest:
        if len(rest) == 1 and method == "GET":
            return Reply(200, _retrieve(org, req, rest[0]))
        raise method_not_allowed(method, "GET")
    if method == "DELETE":
        ids = [i for i in (req.param("ids") or "").split(",") if i]
        if not ids or len(ids) > MAX_COLLECTION:
            raise _input_error(f"Provide between 1 and {MAX_COLLECTION} ids.")
        all_or_none = (req.param("allOrNone") or "false").lower() == "true"
        return Reply(200, _apply(org, ids, all_or_none, lambda i: _delete_one(org, i)))
    if method not in ("POST", "PATCH"):
        raise method_not_allowed(method, "DELETE,PATCH,POST")
    records, all_or_none = _records(req)
    creating = method == "POST"
    allow = req.allow_save
    return Reply(
        200,
        _apply(
            org, records, all_or_none, lambda r: _write_one(org, r, creating=creating, allow=allow)
        ),
    )


def _records(req: ApiRequest) -> tuple[list, bool]:
    """A create, update or upsert collection's records and its ``allOrNone``."""
    body = None if req.body is MISSING else req.body
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise bad_request("JSON_PARSER_ERROR", "The request body must hold a records array")
    for key in body:
        if key not in ("allOrNone", "records"):
            raise bad_request("JSON_PARSER_ERROR", f'Unrecognized field "{key}"')
    records = body["records"]
    if not records or len(records) > MAX_COLLECTION:
        raise _input_error(f"A collection holds between 1 and {MAX_COLLECTION} records.")
    return records, _flag(body.get("allOrNone"), "allOrNone")


def _upsert_one(org: Org, sobject: str, field_name: str, record: object) -> tuple[str, dict]:
    """One record of an upsert collection: its external ID value travels in the record."""
    if _type_of(record).lower() != sobject.lower():
        raise bad_request("INVALID_TYPE", f"The record is not a {sobject}", [])
    data = {k: v for k, v in dict(record).items() if k != "attributes"}  # type: ignore[call-overload]
    key = next((k for k in data if k.lower() == field_name.lower()), None)
    if key is None or data[key] in (None, ""):
        raise bad_request("MISSING_ARGUMENT", f"{field_name} not specified", [field_name])
    value = data.pop(key)
    created, outcome = org.upsert(sobject, field_name, str(value), data)
    if isinstance(outcome, list):
        raise bad_request(
            "DUPLICATE_EXTERNAL_ID",
            f"{field_name}: more than one record found for external id field: {outcome}",
            [field_name],
        )
    return outcome, {"created": created}


def _type_of(record: object) -> str:
    attributes = record.get("attributes") if isinstance(record, dict) else None
    sobject = attributes.get("type") if isinstance(attributes, dict) else None
    if not isinstance(sobject, str):
        raise bad_request(
            "INVALID_TYPE", "Must specify a type in the attributes of each record", []
        )
    return sobject


def _write_one(org: Org, record: object, *, creating: bool, allow: bool = False) -> str:
    sobject = _type_of(record)
    data = dict(record)  # type: ignore[call-overload]
    if creating:
        return org.create(sobject, data, allow_save=allow)["id"]
    record_id = next((data.pop(k) for k in list(data) if k.lower() == "id"), None)
    if not isinstance(record_id, str):
        raise bad_request("MISSING_ARGUMENT", "Id not specified in an update call", [])
    org.update(sobject, record_id, data, allow_save=allow)
    return normalize(record_id)


def _delete_one(org: Org, record_id: str) -> str:
    name = org.object_for_id(record_id)
    if name is None or org.find_sobject(name) is None:
        raise bad_request("MALFORMED_ID", f"malformed id {record_id}", [])
    org.delete(name, record_id)
    return normalize(record_id)


def _apply(
    org: Org, items: list, all_or_none: bool, action: Callable[[object], str | tuple[str, dict]]
) -> list[dict]:
    results: list[dict] = []
    with org.transaction() as tx:
        failed = False
        for item in items:
            try:
                outcome = action(item)
                record_id, extra = (outcome, {}) if isinstance(outcome, str) else outcome
                results.append({"id": record_id, "success": True, "errors": [], **extra})
            except ApiError as exc:
                failed = True
                results.append({"success": False, "errors": [exc.collection_error()]})
        if failed and all_or_none:
            tx.rollback()
            rolled = {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": ALL_OR_NONE,
                "fields": [],
            }
            results = [
                r if not r["success"] else {"success": False, "errors": [dict(rolled)]}
                for r in results
            ]
    return results


def _retrieve(org: Org, req: ApiRequest, sobject: str) -> list:
    ids = [i for i in (req.param("ids") or "").split(",") if i]
    names = [n for n in (req.param("fields") or "").split(",") if n]
    if not ids or not names:
        raise bad_request("MISSING_ARGUMENT", "ids and fields are required")
    out: list = []
    for record_id in ids:
        try:
            out.append(org.retrieve(sobject, record_id, names, req.version))
        except ApiError as exc:
            if exc.status != 404:
                raise
            out.append(None)
    return out
