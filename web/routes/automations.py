"""The automation builder (manager only): automations with live preview, dry run, versions
and their recent runs step by step. The field mappings are ``routes.mappings``, the disposition
rules ``routes.dispositions``.

Forms work without JavaScript (each button posts the form and gets the page back); with htmx,
the editor swaps itself and the preview follows every edit. Names offered for Salesforce
fields and picklist values come from the org's describe, cached by ``mapping_store.describe``.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from integrations.errors import BadInput
from integrations.store.accounts import MANAGER
from integrations.sync.automations import (
    actions,
    aircall_contacts,
    builder,
    definitions,
    glance,
    runs,
    version_diff,
)
from web import params, security
from web.automation_form import (
    CONDITION_INPUTS,
    INPUT_LABELS,
    RECORD_CONDITION_LABEL,
    EditorForm,
)
from web.org_fields import (
    describe,
    form_op,
    invalid_status,
)
from web.templating import render


@security.guard(MANAGER)
async def automations_page(request: Request) -> Response:
    engine = request.app.state.engine
    rows = await run_in_threadpool(builder.summaries, engine)
    since = glance.start_of_day(request.app.state.settings.display_time_zone)
    seen = await run_in_threadpool(glance.glances, engine, since)
    context = {"automations": rows, "glances": seen, "tab": "automations"}
    return render(request, "pages/automations.html", context)


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
            lambda: runs.dry_run(definition, sample.event, engine=engine, settings=settings)
        )
    except BadInput as exc:
        out["preview_error"] = str(exc)
    return out


async def _editor_response(
    request: Request, context: dict[str, Any], status: int = 200
) -> Response:
    if request.headers.get("HX-Request"):
        return render(request, "partials/automation_editor.html", context, status)
    if context["automation_id"]:
        await _add_history(request, context)
    return render(request, "pages/automation_edit.html", context, status)


async def _add_history(request: Request, context: dict[str, Any]) -> None:
    """The side panel: every version, and the newest runs with their steps."""
    engine, automation_id = request.app.state.engine, context["automation_id"]
    context["history"] = await run_in_threadpool(definitions.history, engine, automation_id)
    context["runs"] = await run_in_threadpool(runs.recent_runs, engine, automation_id)


@security.guard(MANAGER)
async def new_page(request: Request) -> Response:
    form = EditorForm()
    trigger = request.query_params.get("trigger")
    if trigger in definitions.TRIGGERS:
        form.trigger = trigger
    context = await _editor_context(request, form, automation_id=None)
    return render(request, "pages/automation_edit.html", context)


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
    context["restored"] = request.query_params.get("restored")
    await _add_history(request, context)
    return render(request, "pages/automation_edit.html", context)


async def _save(request: Request, automation_id: int | None) -> Response:
    """Re-render the form for an editing button; on ``save``, store a version and go to it."""
    engine = request.app.state.engine
    data = await request.form()
    enabled, version, summary = False, None, None
    if automation_id is not None:
        automation_id, summary = await _load(request)
        enabled, version = summary.enabled, summary.version
    op = form_op(data)
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
    return await _editor_response(request, context, invalid_status(request))


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
    return render(request, "partials/automation_preview.html", context)


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
async def restore_page(request: Request) -> Response:
    """Confirm a restore: what the old version changes, and whether the status comes back too."""
    automation_id, summary = await _load(request)
    version = params.number(request.query_params.get("version"), "The version")
    engine = request.app.state.engine
    try:
        current = await run_in_threadpool(definitions.definition, engine, automation_id)
        old = await run_in_threadpool(definitions.definition, engine, automation_id, version)
    except BadInput as exc:
        raise HTTPException(400, str(exc)) from None
    context = {
        "summary": summary,
        "automation_id": automation_id,
        "restoring": version,
        "changes": version_diff.changes(current, old),
        "old_enabled": bool(old.get("enabled", True)),
        "tab": "automations",
    }
    return render(request, "pages/automation_restore.html", context)


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
                with_status=data.get("with_status") == "yes",
            )
        )
    except BadInput as exc:
        raise HTTPException(400, str(exc)) from None
    target = f"/automations/{automation_id}?saved={saved.version}&restored={version}"
    return RedirectResponse(target, status_code=303)
