"""The automation builder (manager only): automations with live preview, dry run, versions
and their recent runs step by step; the field mapping per Salesforce object; the disposition
rules.

Forms work without JavaScript (each button posts the form and gets the page back); with htmx,
the editor swaps itself and the preview follows every edit. Names offered for Salesforce
fields and picklist values come from the org's describe, cached by ``fieldmap.describe``.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from integrations.errors import BadInput, CallbridgeError, RemoteRejected
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.soql import api_name
from integrations.store.accounts import MANAGER
from integrations.sync.automations import (
    actions,
    aircall_contacts,
    builder,
    definitions,
    dispositions,
    fieldmap,
)
from web import params, security
from web.automation_form import (
    CONDITION_INPUTS,
    INPUT_LABELS,
    RECORD_CONDITION_LABEL,
    EditorForm,
    parse_source_text,
    source_text,
)

UNREACHABLE = "Salesforce could not be reached, so its field names are not offered"
NOT_CONFIGURED = "Salesforce is not configured (SALESFORCE_CLIENT_ID): field names are not offered"


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, name, context, status_code=status)


def _invalid(request: Request) -> int:
    """A refused form: 400 for a plain post; 200 for htmx, which swaps only 2xx answers."""
    return 200 if request.headers.get("HX-Request") else 400


def salesforce(request: Request) -> SalesforceClient | None:
    """The worker's client when it runs in this process (one describe cache), else our own."""
    settings = request.app.state.settings
    if not settings.salesforce_client_id:
        return None
    running = getattr(request.app.state, "worker", None)
    if running is not None:
        return running.ctx.salesforce
    client = getattr(request.app.state, "admin_salesforce", None)
    if client is None:
        client = SalesforceClient(settings)
        request.app.state.admin_salesforce = client
    return client


async def describe(
    request: Request, sobjects: list[str]
) -> tuple[dict[str, list[builder.FieldInfo]], str | None]:
    """Fields of each object, and why some are missing (shown once, not as a failure)."""
    sf = salesforce(request)
    if sf is None:
        return {}, NOT_CONFIGURED
    found: dict[str, list[builder.FieldInfo]] = {}
    problem = None
    for sobject in dict.fromkeys(sobjects):
        try:
            api_name(sobject)
            found[sobject] = await run_in_threadpool(builder.fields, sf, sobject)
        except ValueError:
            continue
        except RemoteRejected as exc:
            problem = f"Salesforce has no object {sobject} ({exc.error_code})"
        except CallbridgeError as exc:
            problem = f"{UNREACHABLE} ({sobject}: {str(exc)[:300]})"
    return found, problem


# -- automations ----------------------------------------------------------------------------------


@security.guard(MANAGER)
async def automations_page(request: Request) -> Response:
    engine = request.app.state.engine
    rows = await run_in_threadpool(builder.summaries, engine)
    return _render(request, "pages/automations.html", {"automations": rows, "tab": "automations"})


async def _editor_context(
    request: Request,
    form: EditorForm,
    *,
    automation_id: int | None,
    version: int | None = None,
    enabled: bool = False,
    error: str | None = None,
    with_preview: bool = True,
) -> dict[str, Any]:
    engine, settings = request.app.state.engine, request.app.state.settings
    samples = await run_in_threadpool(builder.samples, engine, form.trigger)
    fields, describe_problem = await describe(request, [s.sobject for s in form.steps if s.sobject])
    context: dict[str, Any] = {
        "form": form,
        "automation_id": automation_id,
        "version": version,
        "enabled": enabled,
        "action_url": f"/automations/{automation_id}" if automation_id else "/automations/new",
        "triggers": definitions.TRIGGERS,
        "catalogue": actions.ACTIONS,
        "conditions": CONDITION_INPUTS,
        "record_condition_label": RECORD_CONDITION_LABEL,
        "contact_fields": aircall_contacts.CONTACT_FIELDS,
        "input_labels": INPUT_LABELS,
        "samples": samples,
        "fields": fields,
        "describe_problem": describe_problem,
        "error": error,
        "tab": "automations",
    }
    if with_preview:
        context.update(await _preview(form, samples, engine, settings, enabled))
    return context


async def _preview(
    form: EditorForm,
    samples: list[builder.Sample],
    engine: Any,
    settings: Any,
    enabled: bool,
) -> dict[str, Any]:
    """A dry run of the form as it stands, against the chosen (else newest) stored event."""
    sample = builder.pick(samples, form.sample)
    out: dict[str, Any] = {"sample": sample, "previews": None, "preview_error": None}
    if sample is None:
        return out
    try:
        definition = form.definition(enabled=enabled)
        definition["name"] = definition["name"] or "Unsaved automation"  # named when saved
        out["previews"] = await run_in_threadpool(
            lambda: definitions.dry_run(definition, sample.event, engine=engine, settings=settings)
        )
    except BadInput as exc:
        out["preview_error"] = str(exc)
    return out


def _op(data: FormData) -> str:
    op = data.get("op")
    return op if isinstance(op, str) else "refresh"


async def _editor_response(
    request: Request, context: dict[str, Any], status: int = 200
) -> Response:
    if request.headers.get("HX-Request"):
        return _render(request, "partials/automation_editor.html", context, status)
    if context["automation_id"]:
        await _add_history(request, context)
    return _render(request, "pages/automation_edit.html", context, status)


async def _add_history(request: Request, context: dict[str, Any]) -> None:
    """The side panel: every version, and the newest runs with their steps."""
    engine, automation_id = request.app.state.engine, context["automation_id"]
    context["history"] = await run_in_threadpool(definitions.history, engine, automation_id)
    context["runs"] = await run_in_threadpool(definitions.recent_runs, engine, automation_id)


@security.guard(MANAGER)
async def new_page(request: Request) -> Response:
    form = EditorForm()
    trigger = request.query_params.get("trigger")
    if trigger in definitions.TRIGGERS:
        form.trigger = trigger
    context = await _editor_context(request, form, automation_id=None)
    return _render(request, "pages/automation_edit.html", context)


async def _load(request: Request) -> tuple[int, Any]:
    engine = request.app.state.engine
    automation_id = request.path_params["automation_id"]
    found = {s.id: s for s in await run_in_threadpool(builder.summaries, engine)}
    if automation_id not in found:
        raise HTTPException(404, "No such automation.")
    return automation_id, found[automation_id]


@security.guard(MANAGER)
async def edit_page(request: Request) -> Response:
    automation_id, summary = await _load(request)
    engine = request.app.state.engine
    definition = await run_in_threadpool(definitions.definition, engine, automation_id)
    form = EditorForm.from_definition(definition)
    form.sample = request.query_params.get("sample")
    context = await _editor_context(
        request,
        form,
        automation_id=automation_id,
        version=summary.version,
        enabled=summary.enabled,
    )
    context["summary"] = summary
    context["saved"] = request.query_params.get("saved")
    await _add_history(request, context)
    return _render(request, "pages/automation_edit.html", context)


async def _save(request: Request, automation_id: int | None) -> Response:
    """Re-render the form for an editing button; on ``save``, store a version and go to it."""
    engine = request.app.state.engine
    data = await request.form()
    enabled, version, summary = False, None, None
    if automation_id is not None:
        automation_id, summary = await _load(request)
        enabled, version = summary.enabled, summary.version
    op = _op(data)
    try:
        form = EditorForm.from_form(data)
    except BadInput as exc:
        raise HTTPException(400, str(exc)) from None
    if op != "save":
        form.apply(op)
        context = await _editor_context(
            request, form, automation_id=automation_id, version=version, enabled=enabled
        )
        context["summary"] = summary
        context["dry_run"] = op == "dry_run"
        return await _editor_response(request, context)
    sent_version = str(data.get("version") or "")
    error = None
    if summary is not None and sent_version != str(summary.version):
        error = (
            f"Someone saved version {summary.version} while you were editing version "
            f"{sent_version or '?'}: reload to see it, then make your change again."
        )
    else:
        try:
            definition = form.definition(enabled=enabled)
            saved = await run_in_threadpool(
                lambda: definitions.save(
                    engine, definition, by=request.state.user.email, automation_id=automation_id
                )
            )
        except BadInput as exc:
            error = str(exc)
        else:
            target = f"/automations/{saved.id}?saved={saved.version}"
            if request.headers.get("HX-Request"):
                return Response(status_code=204, headers={"HX-Redirect": target})
            return RedirectResponse(target, status_code=303)
    context = await _editor_context(
        request, form, automation_id=automation_id, version=version, enabled=enabled, error=error
    )
    context["summary"] = summary
    return await _editor_response(request, context, _invalid(request))


@security.guard(MANAGER)
async def create(request: Request) -> Response:
    return await _save(request, None)


@security.guard(MANAGER)
async def update(request: Request) -> Response:
    return await _save(request, request.path_params["automation_id"])


@security.guard(MANAGER)
async def preview(request: Request) -> Response:
    """The live preview: a dry run of the unsaved form (htmx swaps it in beside the form)."""
    data = await request.form()
    try:
        form = EditorForm.from_form(data)
    except BadInput as exc:
        raise HTTPException(400, str(exc)) from None
    engine, settings = request.app.state.engine, request.app.state.settings
    samples = await run_in_threadpool(builder.samples, engine, form.trigger)
    context = await _preview(form, samples, engine, settings, enabled=False)
    context["form"] = form
    return _render(request, "partials/automation_preview.html", context)


@security.guard(MANAGER)
async def set_enabled(request: Request) -> Response:
    automation_id, _summary = await _load(request)
    data = await request.form()
    enabled = data.get("enabled") == "true"
    await run_in_threadpool(
        lambda: definitions.set_enabled(
            request.app.state.engine, automation_id, enabled, by=request.state.user.email
        )
    )
    return RedirectResponse(f"/automations/{automation_id}", status_code=303)


@security.guard(MANAGER)
async def restore(request: Request) -> Response:
    automation_id, _summary = await _load(request)
    data = await request.form()
    version = params.number(data.get("version"), "The version")
    try:
        saved = await run_in_threadpool(
            lambda: definitions.restore(
                request.app.state.engine,
                automation_id,
                version,
                by=request.state.user.email,
            )
        )
    except BadInput as exc:
        raise HTTPException(400, str(exc)) from None
    return RedirectResponse(f"/automations/{automation_id}?saved={saved.version}", status_code=303)


# -- field mappings -------------------------------------------------------------------------------


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
    return _render(
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
                lambda: definitions.dry_run(trial, sample.event, engine=engine, settings=settings)
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
    mapping = await run_in_threadpool(fieldmap.load_mapping, request.app.state.engine, sobject)
    rows = [(target, source_text(source)) for target, source in mapping.items()]
    context = await _mapping_context(request, sobject, rows, request.query_params.get("sample"))
    context["saved"] = request.query_params.get("saved")
    return _render(request, "pages/automation_mapping.html", context)


@security.guard(MANAGER)
async def save_mapping(request: Request) -> Response:
    """Check the mapping against the org's describe; keep it only when nothing is wrong."""
    sobject = _sobject(request)
    data = await request.form()
    rows = _mapping_rows(data)
    op = _op(data)
    sample = data.get("sample")
    if op == "add_row":
        rows.append(("", ""))
    context = await _mapping_context(
        request, sobject, rows, sample if isinstance(sample, str) else None
    )
    if op != "save":
        return _render(request, "pages/automation_mapping.html", context)
    mapping = {t.strip(): parse_source_text(s) for t, s in rows if t.strip()}
    sf = salesforce(request)
    if sf is None:
        context["problems"] = [fieldmap.Problem(sobject, "", NOT_CONFIGURED.split(":")[0])]
        return _render(request, "pages/automation_mapping.html", context, _invalid(request))
    try:
        problems = await run_in_threadpool(fieldmap.validate_mapping, sf, sobject, mapping)
        if not problems:
            engine, user = request.app.state.engine, request.state.user
            await run_in_threadpool(fieldmap.save_mapping, engine, sf, sobject, mapping, user.email)
    except CallbridgeError as exc:
        problems = [fieldmap.Problem(sobject, "", f"{UNREACHABLE}: {str(exc)[:300]}")]
    if problems:
        context["problems"] = problems
        return _render(request, "pages/automation_mapping.html", context, _invalid(request))
    return RedirectResponse(f"/automations/mappings/{sobject}?saved=1", status_code=303)


# -- disposition rules --------------------------------------------------------------------------


async def _dispositions_context(request: Request) -> dict[str, Any]:
    engine, settings = request.app.state.engine, request.app.state.settings
    rules = await run_in_threadpool(dispositions.rules, engine)
    objects = ["Lead", "Opportunity"]
    if settings.disposition_contact_status_field:
        objects.append("Contact")
    fields, describe_problem = await describe(request, objects)

    def picklist(sobject: str, name: str) -> list[str]:
        spec = next((f for f in fields.get(sobject, []) if f.name.lower() == name.lower()), None)
        return spec.picklist if spec else []

    targets: list[str] = []
    sf = salesforce(request)
    if sf is not None and not describe_problem:
        try:
            targets = await run_in_threadpool(dispositions.check_targets, sf, engine, settings)
        except CallbridgeError as exc:
            describe_problem = f"{UNREACHABLE}: {str(exc)[:300]}"
    return {
        "rules": rules,
        "lead_statuses": picklist("Lead", "Status"),
        "stages": picklist("Opportunity", "StageName"),
        "contact_statuses": picklist("Contact", settings.disposition_contact_status_field or ""),
        "contact_status_field": settings.disposition_contact_status_field,
        "targets": targets,
        "describe_problem": describe_problem,
        "tab": "dispositions",
    }


@security.guard(MANAGER)
async def dispositions_page(request: Request) -> Response:
    context = await _dispositions_context(request)
    context["saved"] = request.query_params.get("saved")
    return _render(request, "pages/automation_dispositions.html", context)


def _option(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


@security.guard(MANAGER)
async def save_disposition(request: Request) -> Response:
    key = request.path_params["key"]
    data = await request.form()

    def text(name: str) -> str | None:
        value = data.get(name)
        return value.strip() or None if isinstance(value, str) else None

    changes: dict[str, Any] = {
        "name": text("name") or key,
        "tags": [t.strip() for t in str(data.get("tags") or "").split(",") if t.strip()],
        "lead_status": text("lead_status"),
        "contact_status": text("contact_status"),
        "opportunity_stage": text("opportunity_stage"),
        "enabled": data.get("enabled") == "on",
        "options": {
            name.removeprefix("opt-"): _option(str(value))
            for name, value in data.multi_items()
            if name.startswith("opt-") and isinstance(value, str)
        },
    }
    try:
        if len(changes["name"]) > 80 or any(
            len(v or "") > 255
            for v in (
                *changes["tags"],
                changes["lead_status"],
                changes["contact_status"],
                changes["opportunity_stage"],
            )
        ):
            raise BadInput("a name has at most 80 characters, a tag or value at most 255")
        await run_in_threadpool(
            lambda: dispositions.set_rule(
                request.app.state.engine, key, by=request.state.user.email, **changes
            )
        )
    except BadInput as exc:
        context = await _dispositions_context(request)
        context["error"] = (key, str(exc))
        return _render(request, "pages/automation_dispositions.html", context, _invalid(request))
    return RedirectResponse(f"/automations/dispositions?saved={key}#rule-{key}", status_code=303)
