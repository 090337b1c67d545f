"""Refusals in plain words, and failed actions grouped by cause (both databases)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session

from integrations.salesforce import refusals
from integrations.store.models import Job
from integrations.sync.jobs import kinds
from integrations.sync.review import browse, causes

PICKLIST = [
    {
        "message": "Call Result: bad value for restricted picklist field: Sale",
        "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "fields": ["CallDisposition"],
    }
]


def test_a_required_field_is_named_from_the_message_when_fields_is_missing() -> None:
    body = json.dumps(
        [
            {
                "message": "Required fields are missing: [Industry]",
                "errorCode": "REQUIRED_FIELD_MISSING",
            }
        ]
    )
    explained = refusals.explain("REQUIRED_FIELD_MISSING", body, "Lead")
    assert explained.headline == "a required field is missing: Industry"
    assert "Setup → Object Manager → Lead → Fields & Relationships" in explained.fix
    assert explained.fields == ("Industry",)


def test_a_picklist_refusal_names_the_field_and_the_value() -> None:
    explained = refusals.explain(None, json.dumps(PICKLIST), "Task")
    assert explained.headline == "a value is not in the picklist CallDisposition: Sale"
    assert "Values" in explained.fix


def test_a_collections_error_reads_status_code() -> None:
    body = json.dumps(
        [
            {
                "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "message": "Region must be set for EMEA",
                "fields": [],
            }
        ]
    )
    explained = refusals.explain("FIELD_CUSTOM_VALIDATION_EXCEPTION", body, "Task")
    assert explained.headline == "a validation rule refused it: Region must be set for EMEA"
    assert "Validation Rules" in explained.fix


def test_an_apex_trigger_refusal_shows_the_triggers_own_message() -> None:
    message = (
        "AccountTrigger: execution of BeforeInsert caused by: "
        "System.DmlException: Region is required for EMEA accounts"
    )
    body = json.dumps([{"message": message, "errorCode": "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"}])
    explained = refusals.explain("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", body, "Task")
    assert explained.headline.startswith("an Apex trigger or flow refused it: ")
    assert "Region is required for EMEA accounts" in explained.headline
    assert "Setup → Object Manager → Task → Triggers" in explained.fix


@given(st.one_of(st.none(), st.text()), st.one_of(st.none(), st.text(), st.binary().map(repr)))
def test_any_stored_error_is_explained_without_raising(code: str | None, body: str | None) -> None:
    explained = refusals.explain(code, body)
    assert explained.headline
    assert explained.fix


def _failed(engine: Engine, call_id: int, kind: str, code: str, body: object) -> None:
    with Session(engine) as s:
        s.add(
            Job(
                kind=kind,
                dedupe_key=f"{kind}:{call_id}",
                call_id=call_id,
                payload={},
                status="failed",
                error_code=code,
                last_error=json.dumps(body),
                run_at=0.0,
            )
        )
        s.commit()


def test_failed_actions_group_by_code_and_field_not_by_value(engine: Engine) -> None:
    other_value = [
        {**PICKLIST[0], "message": "Call Result: bad value for restricted picklist field: Won"}
    ]
    required = [
        {
            "message": "Required fields are missing: [Region__c]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["Region__c"],
        }
    ]
    _failed(engine, 1, kinds.LOG_CALL, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", PICKLIST)
    _failed(engine, 2, kinds.LOG_CALL, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", other_value)
    _failed(engine, 3, kinds.LOG_CALL, "REQUIRED_FIELD_MISSING", required)
    _failed(engine, 4, kinds.INSIGHT_CARD, "Not found", {"error": "Not found"})
    found = causes.failure_causes(engine)
    assert [(c.service, c.calls) for c in found] == [
        ("Salesforce", 2),
        ("Aircall", 1),
        ("Salesforce", 1),
    ]
    picklist = found[0]
    assert picklist.fix_url == "/automations/mappings/Task"
    assert sorted(causes.call_ids(engine, picklist.key)) == [1, 2]
    assert found[1].explanation.headline == "the call or contact no longer exists in Aircall"
    assert causes.call_ids(engine, "no|such|cause") == []
    filters = browse.Filters.parse({"status": "failed", "cause": found[2].key})
    assert filters.as_params()["cause"] == found[2].key
