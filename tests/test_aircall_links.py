"""Issue 15: links to a call in Aircall open the Dashboard (``AIRCALL_CALL_URL``), never the
API's ``direct_link``, which answers only with API credentials."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from integrations.settings import Settings
from integrations.store import accounts
from tests.conftest import Stack, StackWith
from tests.helpers import AGENT_EMAIL, answered_inbound_call, logged
from tests.signin import PASSWORD, sign_in

CALLER = "+14155550100"
DASHBOARD = "https://dashboard.example.test/calls/{id}"


def _logged_call(stack: Stack) -> tuple[int, dict]:
    agent = stack.company.add_user("Jane Agent", AGENT_EMAIL)
    number = stack.company.add_number("Support line", "+1 212 555 0199")
    call_id = answered_inbound_call(stack.company, number["id"], agent["id"], CALLER)
    stack.sender.drain(timeout=10)
    job = logged(stack.engine)
    assert job.status == "done", job.last_error
    (task,) = stack.org.records("Task")
    return call_id, task


def test_the_task_and_the_call_page_link_the_call_in_the_dashboard(stack_with: StackWith) -> None:
    with stack_with(AIRCALL_CALL_URL=DASHBOARD) as stack:
        call_id, task = _logged_call(stack)
        link = DASHBOARD.replace("{id}", str(call_id))
        assert f"Aircall: {link}" in task["Description"]
        assert "api." not in task["Description"]
        accounts.add_user(stack.engine, "manager@example.com", "manager", PASSWORD)
        page = sign_in(stack.app.url, "manager@example.com").client.get(f"/calls/{call_id}")
        assert page.status_code == 200
        assert f'href="{link}"' in page.text


def test_without_a_dashboard_address_nothing_links_to_the_api(stack_with: StackWith) -> None:
    with stack_with() as stack:
        call_id, task = _logged_call(stack)
        assert "/v1/calls/" in stack.company.calls[call_id]["direct_link"]
        assert "Aircall:" not in task["Description"]
        assert "/v1/calls/" not in task["Description"]
        accounts.add_user(stack.engine, "manager@example.com", "manager", PASSWORD)
        page = sign_in(stack.app.url, "manager@example.com").client.get(f"/calls/{call_id}")
        assert "/v1/calls/" not in page.text
        assert "Open in Aircall" not in page.text


@pytest.mark.parametrize(
    "value",
    ["dashboard.aircall.io/calls/{id}", "https://dashboard.aircall.io/calls", "ftp://x/{id}"],
)
def test_a_dashboard_address_without_a_place_for_the_id_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="with \\{id\\} where the call id goes"):
        Settings(_env_file=None, aircall_call_url=value)
