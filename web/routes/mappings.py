"""The field mapping per Salesforce object (manager only): rows checked against the org's describe,
previewed on a recent call, kept only when nothing is wrong."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from integrations.errors import BadInput, CallbridgeError
from integrations.salesforce.soql import api_name
from integrations.store.accounts import MANAGER
from integrations.sync.automations import (
    builder,
    mapping_store,
    runs,
)
from web import security
from web.automation_form import (
    parse_source_text,
    source_text,
)
from web.org_fields import (
    NOT_CONFIGURED,
    UNREACHABLE,
    describe,
    form_op,
    invalid_status,
    salesforce,
)
from web.templating import render


def _sobject(request: Request) -> str:
    sobject = request.path_params["sobject"]
    try:
        return api_name(sobject)
    except ValueError:
        raise HTTPException(404, "Not a Salesforce object name.") from None


@security.guard(MANAGER)
async def mappings_page(request: Request) -> Response:
    wanted = request.query_params.get("sobject")
    if wanted:
        try:
            return RedirectResponse(f"/automations/mappings/{api_name(wanted)}", status_code=303)
        except ValueError:
            raise HTTPException(400, "Not a Salesforce object name.") from None
    engine = request.app.state.engine
    objects = await run_in_threadpool(builder.mapped_objects, engine)
    return render(
        request, "pages/automation_mappings.html", {"objects": objects, "tab": "mappings"}
    )


def _mapping_rows(data: FormData) -> list[tuple[str, str]]:
    rows: dict[int, dict[str, str]] = {}
    for key, value in data.multi_items():
        parts = key.split("-")
        if (
            len(parts) == 3
            and parts[0] == "row"
            and parts[1].isascii()
            and parts[1].isdigit()
            and isinstance(value, str)
        ):
            if int(parts[1]) >= 200:
                raise HTTPException(400, "A mapping has at most 200 fields.")
            rows.setdefault(int(parts[1]), {})[parts[2]] = value
    return [(r.get("target", ""), r.get("source", "")) for _i, r in sorted(rows.items())]


async def _mapping_context(
    request: Request, sobject: str, rows: list[tuple[str, str]], sample_key: str | None
) -> dict[str, Any]:
    engine, settings = request.app.state.engine, request.app.state.settings
    fields, describe_problem = await describe(request, [sobject])
    samples = await run_in_threadpool(builder.samples, engine, "E12")
    sample = builder.pick(samples, sample_key)
    preview, preview_error = None, None
    mapping = {t.strip(): parse_source_text(s) for t, s in rows if t.strip()}
    if sample is not None and mapping:
        trial = {
            "name": "mapping preview",
            "trigger": "E12",
            "actions": [
                {
                    "action": "salesforce:A01",
                    "sobject": sobject,
                    "use_mapping": False,
                    "fields": mapping,
                }
            ],
        }
        try:
            (step,) = await run_in_threadpool(
                lambda: runs.dry_run(trial, sample.event, engine=engine, settings=settings)
            )
            preview, preview_error = step.sent, step.note if step.operation == "refused" else None
        except BadInput as exc:
            preview_error = str(exc)
    customised = await run_in_threadpool(builder.is_customised, engine, sobject)
    return {
        "sobject": sobject,
        "rows": rows,
        "fields": fields.get(sobject),
        "describe_problem": describe_problem,
        "samples": samples,
        "sample": sample,
        "preview": preview,
        "preview_error": preview_error,
        "customised": customised,
        "problems": [],
        "tab": "mappings",
    }


@security.guard(MANAGER)
async def mapping_page(request: Request) -> Response:
    sobject = _sobject(request)
    mapping = await run_in_threadpool(mapping_store.load_mapping, request.app.state.engine, sobject)
    rows = [(target, source_text(source)) for target, source in mapping.items()]
    context = await _mapping_context(request, sobject, rows, request.query_params.get("sample"))
    context["saved"] = request.query_params.get("saved")
    return render(request, "pages/automation_mapping.html", context)


@security.guard(MANAGER)
async def save_mapping(request: Request) -> Response:
    """Check the mapping against the org's describe; keep it only when nothing is wrong."""
    sobject = _sobject(request)
    data = await request.form()
    rows = _mapping_rows(data)
    op = form_op(data)
    sample = data.get("sample")
    if op == "add_row":
        rows.append(("", ""))
    context = await _mapping_context(
        request, sobject, rows, sample if isinstance(sample, str) else None
    )
    if op != "save":
        return render(request, "pages/automation_mapping.html", context)
    mapping = {t.strip(): parse_source_text(s) for t, s in rows if t.strip()}
    sf = salesforce(request)
    if sf is None:
        context["problems"] = [mapping_store.Problem(sobject, "", NOT_CONFIGURED.split(":")[0])]
        return render(request, "pages/automation_mapping.html", context, invalid_status(request))
    try:
        problems = await run_in_threadpool(mapping_store.validate_mapping, sf, sobject, mapping)
        if not problems:
            engine, user = request.app.state.engine, request.state.user
            await run_in_threadpool(
                mapping_store.save_mapping, engine, sf, sobject, mapping, user.email
            )
    except CallbridgeError as exc:
        problems = [mapping_store.Problem(sobject, "", f"{UNREACHABLE}: {str(exc)[:300]}")]
    if problems:
        context["problems"] = problems
        return render(request, "pages/automation_mapping.html", context, invalid_status(request))
    return RedirectResponse(f"/automations/mappings/{sobject}?saved=1", status_code=303)
