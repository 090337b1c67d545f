"""REST resources under ``/services/data/vXX.X/``, independent of HTTP.

``handle`` serves one request given as an ``ApiRequest``; the Starlette app and the composite
resource both call it, so a subrequest behaves exactly like the same call made on its own.
"""

from __future__ import annotations

import datetime as dt
import re
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from . import composite, soql, soql_query, sosl
from .errors import ApiError, bad_request, not_found
from .values import format_datetime, now_utc, parse_datetime
from .wire import (
    MISSING,
    NEWEST_VERSION,
    OLDEST_VERSION,
    ApiRequest,
    Reply,
    method_not_allowed,
)

if TYPE_CHECKING:
    from .org import Org

MAX_REPLICATION_IDS = 600_000


def release_label(version: str) -> str:
    number = int(version.split(".")[0])
    season = ("Winter", "Spring", "Summer")[(number - 59) % 3]
    return f"{season} '{24 + (number - 59) // 3}"


def versions() -> list[dict]:
    return [
        {
            "label": release_label(f"{n}.0"),
            "url": f"/services/data/v{n}.0",
            "version": f"{n}.0",
        }
        for n in range(OLDEST_VERSION, NEWEST_VERSION + 1)
    ]


def handle(org: Org, req: ApiRequest) -> Reply:
    try:
        with org.lock, org.security.api_request():
            return _route(org, req)
    except ApiError as exc:
        return Reply(exc.status, exc.body())


def _route(org: Org, req: ApiRequest) -> Reply:
    method = req.method
    if method == "POST" and req.param("_HttpMethod"):
        method = req.param("_HttpMethod") or method
    if method == "HEAD":
        method = "GET"
    segs = req.segments
    if not segs:
        if method != "GET":
            raise method_not_allowed(method, "HEAD,GET")
        base = f"/services/data/v{req.version}"
        names = ("sobjects", "query", "queryAll", "search", "limits", "composite")
        return Reply(200, {name: f"{base}/{name}" for name in names})
    head, rest = segs[0], segs[1:]
    if head == "limits" and not rest:
        if method != "GET":
            raise method_not_allowed(method, "HEAD,GET")
        return Reply(200, _limits(org))
    if head == "sobjects":
        return _sobjects(org, req, method, rest)
    if head in ("query", "queryAll") and len(rest) <= 1:
        if method != "GET":
            raise method_not_allowed(method, "HEAD,GET")
        if rest:
            return _query_more(org, req, rest[0])
        return _query(org, req, include_deleted=head == "queryAll")
    if head == "search" and not rest:
        if method != "GET":
            raise method_not_allowed(method, "HEAD,GET")
        text = req.param("q")
        org.statements.append(text or "")
        if text is None:
            raise bad_request(
                "MALFORMED_SEARCH",
                "No search term found. The search term must be enclosed in braces.",
            )
        found = sosl.run(org, text, req.version)
        return Reply(200, {"searchRecords": found} if float(req.version) >= 37 else found)
    if head == "ui-api":
        return _ui_api(org, req, method, rest)
    if head == "composite":
        if not rest:
            if method != "POST":
                raise method_not_allowed(method, "POST")
            return composite.run(org, req, handle)
        if rest[0] == "sobjects":
            return composite.collections(org, req, method, rest[1:])
    raise not_found()


def _ui_api(org: Org, req: ApiRequest, method: str, rest: list[str]) -> Reply:
    """The one UI API resource the emulator serves: a record type's picklist values
    (``object-info/{obj}/picklist-values/{rtId}[/{field}]``)."""
    if len(rest) not in (4, 5) or rest[0] != "object-info" or rest[2] != "picklist-values":
        raise not_found()
    if method != "GET":
        raise method_not_allowed(method, "GET")
    values = org.picklist_values(rest[1], rest[3], req.version)
    if len(rest) == 4:
        return Reply(200, values)
    by_name = {name.lower(): doc for name, doc in values["picklistFieldValues"].items()}
    doc = by_name.get(rest[4].lower())
    if doc is None:
        raise not_found()
    return Reply(200, doc)


def _limits(org: Org) -> dict:
    used = org.api_used
    return {
        "DailyApiRequests": {"Max": org.api_max, "Remaining": max(org.api_max - used, 0)},
        "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
        "DailyStreamingApiEvents": {"Max": 10000, "Remaining": 10000},
        "DataStorageMB": {"Max": 5, "Remaining": 5},
        "FileStorageMB": {"Max": 20, "Remaining": 20},
        "SingleEmail": {"Max": 15, "Remaining": 15},
    }


def _fields_param(req: ApiRequest) -> list[str] | None:
    raw = req.param("fields")
    if raw is None:
        return None
    return [name.strip() for name in raw.split(",") if name.strip()]


def _sobjects(org: Org, req: ApiRequest, method: str, rest: list[str]) -> Reply:
    version = req.version
    if not rest:
        if method != "GET":
            raise method_not_allowed(method, "HEAD,GET")
        return Reply(
            200,
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [o.summary(version) for o in org.schema.values()],
            },
        )
    obj = org.sobject(rest[0])
    if len(rest) == 1:
        if method == "GET":
            recent = [
                org.render(obj, rec, [obj.fields["Id"]], version)
                for rec in org.table(obj.name)[-25:]
                if not rec.get("IsDeleted")
            ]
            return Reply(200, {"objectDescribe": obj.summary(version), "recentItems": recent})
        if method == "POST":
            return _created(
                org.create(obj.name, _body(req), allow_save=req.allow_save), obj.name, version
            )
        raise method_not_allowed(method, "HEAD,GET,POST")
    if rest[1] == "describe" and len(rest) == 2:
        if method != "GET":
            raise method_not_allowed(method, "HEAD,GET")
        since = req.headers.get("if-modified-since")
        if since:
            try:
                moment = parsedate_to_datetime(since)
            except (TypeError, ValueError):
                moment = None
            if moment is not None and moment.tzinfo and moment >= org.schema_changed:
                return Reply(304)
        body = org.security.describe(obj, version)
        body["recordTypeInfos"] = org.record_type_infos(obj.name, version)
        return Reply(200, body)
    if len(rest) == 2 and rest[1] in ("updated", "deleted") and method == "GET":
        return Reply(200, _replication(org, req, obj.name, deleted=rest[1] == "deleted"))
    if len(rest) == 2:
        record_id = rest[1]
        if method == "GET":
            return Reply(200, org.retrieve(obj.name, record_id, _fields_param(req), version))
        if method == "PATCH":
            org.update(obj.name, record_id, _body(req), allow_save=req.allow_save)
            return Reply(204)
        if method == "DELETE":
            org.delete(obj.name, record_id)
            return Reply(204)
        if method == "POST" and record_id.lower() == "id":
            return _created(
                org.create(obj.name, _body(req), allow_save=req.allow_save), obj.name, version
            )
        raise method_not_allowed(method, "HEAD,GET,PATCH,DELETE")
    if len(rest) == 3:
        return _by_external_id(org, req, method, obj.name, rest[1], rest[2])
    raise not_found()


def _replication(org: Org, req: ApiRequest, sobject: str, *, deleted: bool) -> dict:
    """getUpdated / getDeleted: ids whose SystemModstamp falls in [start, covered).

    ``start`` and ``end`` lose their seconds, as in Salesforce; ``latestDateCovered`` is ``end`` or
    the current (whole) second if earlier, so a poller restarting there misses nothing.
    """
    bounds = []
    for name in ("start", "end"):
        text = req.param(name)
        moment = parse_datetime(text) if text else None
        if moment is None:
            raise bad_request(
                "INVALID_REPLICATION_DATE" if text else "MISSING_ARGUMENT",
                f"{name} must be an ISO 8601 date and time with a time zone",
            )
        bounds.append(moment.replace(second=0, microsecond=0))
    start, end = bounds
    now = now_utc()
    window = dt.timedelta(days=15 if deleted else 30)
    if end - start < (dt.timedelta(minutes=1) if deleted else dt.timedelta(microseconds=1)):
        raise bad_request(
            "INVALID_REPLICATION_DATE",
            "startDate must chronologically precede endDate"
            + (" by more than one minute" if deleted else ""),
        )
    if start < now - window:
        raise bad_request(
            "INVALID_REPLICATION_DATE",
            f"startDate cannot be more than {window.days} days ago",
        )
    covered = min(end, now)
    hits = []
    for rec in org.table(sobject):
        stamp = parse_datetime(rec["SystemModstamp"])
        if stamp is None or not start <= stamp < covered or bool(rec.get("IsDeleted")) != deleted:
            continue
        hits.append(rec)
    if len(hits) > MAX_REPLICATION_IDS:
        raise bad_request("EXCEEDED_ID_LIMIT", "too many ids; use a smaller window")
    if not deleted:
        return {"ids": [r["Id"] for r in hits], "latestDateCovered": format_datetime(covered)}
    return {
        "deletedRecords": [{"id": r["Id"], "deletedDate": r["SystemModstamp"]} for r in hits],
        "earliestDateAvailable": format_datetime((now - window).replace(second=0)),
        "latestDateCovered": format_datetime(covered),
    }


def _created(result: dict, sobject: str, version: str) -> Reply:
    return Reply(
        201, result, {"Location": f"/services/data/v{version}/sobjects/{sobject}/{result['id']}"}
    )


def _body(req: ApiRequest) -> object:
    if req.body is MISSING:
        raise bad_request(
            "JSON_PARSER_ERROR",
            "The HTTP entity body is required, but this request has no entity body.",
        )
    return req.body


def _by_external_id(
    org: Org, req: ApiRequest, method: str, sobject: str, field_name: str, value: str
) -> Reply:
    version = req.version
    if method == "PATCH":
        created, outcome = org.upsert(sobject, field_name, value, _body(req))
        if isinstance(outcome, list):
            return Reply(
                300, [f"/services/data/v{version}/sobjects/{sobject}/{i}" for i in outcome]
            )
        legacy = float(version) < 46
        body: dict = {"id": outcome, "success": True, "errors": []}
        if created:
            if not legacy:
                body["created"] = True
            return Reply(201, body)
        if legacy:
            return Reply(204)
        body["created"] = False
        return Reply(200, body)
    if method not in ("GET", "DELETE"):
        raise method_not_allowed(method, "HEAD,GET,PATCH,DELETE")
    *_, matches = org.external_matches(sobject, field_name, value)
    if len(matches) > 1:
        return Reply(
            300, [f"/services/data/v{version}/sobjects/{sobject}/{m['Id']}" for m in matches]
        )
    if not matches:
        raise not_found()
    if method == "DELETE":
        org.delete(sobject, matches[0]["Id"])
        return Reply(204)
    return Reply(200, org.retrieve(sobject, matches[0]["Id"], _fields_param(req), version))


def _batch_size(org: Org, req: ApiRequest) -> int:
    size = org.query_batch_size
    options = req.headers.get("sforce-query-options", "")
    match = re.search(r"batchSize=(\d+)", options)
    if match and 200 <= int(match.group(1)) <= 2000:
        size = min(size, int(match.group(1)))
    return size


def _query(org: Org, req: ApiRequest, *, include_deleted: bool) -> Reply:
    text = req.param("q")
    org.statements.append(text or "")
    if text is None:
        raise bad_request("MALFORMED_QUERY", "A query string has to be specified")
    query = soql.parse(org, text)
    rows = soql_query.select(org, query, include_deleted=include_deleted)
    if query.count:
        return Reply(200, {"totalSize": len(rows), "done": True, "records": []})
    rendered = [soql_query.render_row(org, query, rec, req.version) for rec in rows]
    batch = _batch_size(org, req)
    body: dict = {"totalSize": len(rendered), "done": True, "records": rendered}
    if len(rendered) > batch:
        key = org.cursors.open(rendered, len(rendered), batch)
        body = {
            "totalSize": len(rendered),
            "done": False,
            "nextRecordsUrl": f"/services/data/v{req.version}/query/{key}-{batch}",
            "records": rendered[:batch],
        }
    return Reply(200, body)


def _query_more(org: Org, req: ApiRequest, locator: str) -> Reply:
    key, _, start = locator.rpartition("-")
    cursor = org.cursors.get(key) if key and start.isdigit() else None
    if cursor is None or int(start) >= cursor.total or int(start) % cursor.batch:
        raise bad_request("INVALID_QUERY_LOCATOR", "invalid query locator")
    begin = int(start)
    end = begin + cursor.batch
    body: dict = {"totalSize": cursor.total, "done": end >= cursor.total}
    if end < cursor.total:
        body["nextRecordsUrl"] = f"/services/data/v{req.version}/query/{key}-{end}"
    else:
        org.cursors.close(key)
    body["records"] = cursor.rows[begin:end]
    return Reply(200, body)
