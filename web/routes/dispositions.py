"""The disposition rules (manager only): the tag an agent sets → status, stage, task, event,
re-queue or Do Not Call; picklist values offered from the org."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from integrations.errors import BadInput, CallbridgeError
from integrations.salesforce.record_types import RecordTypeMissing
from integrations.store.accounts import MANAGER
from integrations.sync.automations import dispositions
from integrations.sync.calls import agent_actions
from web import security
from web.org_fields import (
    NOT_CONFIGURED,
    UNREACHABLE,
    describe,
    invalid_status,
    salesforce,
)
from web.templating import render


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
        except RecordTypeMissing as exc:
            describe_problem = str(exc)
        except CallbridgeError as exc:
            describe_problem = f"{UNREACHABLE}: {str(exc)[:300]}"
    aircall_tags = await agent_actions.company_tags(settings, engine)
    known = {tag.casefold() for tag in aircall_tags}
    return {
        "rules": rules,
        "aircall_tags": aircall_tags,
        "tags_missing": {
            rule.key: [tag for tag in rule.tags if tag.casefold() not in known] for rule in rules
        }
        if aircall_tags
        else {},
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
    return render(request, "pages/automation_dispositions.html", context)


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


async def _check_values(request: Request, changes: dict[str, Any]) -> None:
    """Refuse target values the org's picklists lack, or that cannot be checked right now."""
    targets = ("lead_status", "contact_status", "opportunity_stage")
    if not any(changes.get(name) for name in targets):
        return
    sf = salesforce(request)
    if sf is None:
        raise BadInput(f"{NOT_CONFIGURED.split(':')[0]}: the values cannot be checked")
    settings = request.app.state.settings
    try:
        problems = await run_in_threadpool(dispositions.check_values, sf, settings, changes)
    except RecordTypeMissing as exc:
        raise BadInput(f"The values cannot be checked: {exc}") from None
    except CallbridgeError as exc:
        raise BadInput(
            f"Salesforce could not be reached to check the values: {str(exc)[:300]}"
        ) from None
    if problems:
        raise BadInput("; ".join(problems))


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
        await _check_values(request, changes)
        await run_in_threadpool(
            lambda: dispositions.set_rule(
                request.app.state.engine, key, by=request.state.user.email, **changes
            )
        )
    except BadInput as exc:
        context = await _dispositions_context(request)
        context["error"] = (key, str(exc))
        context["rules"] = [  # the refused rule as typed, so the manager fixes, not retypes
            r.model_copy(update={**changes, "options": {**r.options, **changes["options"]}})
            if r.key == key
            else r
            for r in context["rules"]
        ]
        return render(
            request, "pages/automation_dispositions.html", context, invalid_status(request)
        )
    return RedirectResponse(f"/automations/dispositions?saved={key}#rule-{key}", status_code=303)
