"""The agent acts from the dashboard in a real browser: a disposition and a note that reach
Aircall and the Task, "Create Lead" for an unknown number, a pick among several matches."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect
from sqlmodel import Session, select

from integrations.loopback import wait_for
from integrations.store.automation_models import Automation
from integrations.sync.automations import definitions
from integrations.sync.calls import untagged
from tests.browser.conftest import Screen, add_account
from tests.conftest import Stack, StackWith
from tests.helpers import answered_inbound_call, jobs, settled

AGENT = "maya@example.com"
CALLER = "+14155550100"
Opener = Callable[[str], Screen]


def _on_the_line(
    stack: Stack,
    open_screen: Opener,
    caller: str,
    *,
    in_salesforce: bool = True,
    settle: bool = True,
) -> tuple[Screen, int]:
    """Maya signed in on her dashboard, answering a call from ``caller``."""
    agent = stack.company.add_user("Maya Patel", AGENT)
    number = stack.company.add_number("Sales line", "+1 212 555 0199")
    if in_salesforce:
        stack.org.add_user("Maya Patel", AGENT)
    add_account(stack.engine, AGENT, "agent")
    screen = open_screen(stack.app.url)
    screen.sign_in(AGENT)
    expect(screen.page.locator("#live-status")).to_have_text("Live")
    call = stack.company.start_call(
        direction="inbound", external=caller, number_id=number["id"], user_id=agent["id"]
    )
    stack.company.answer(call["id"], user_id=agent["id"])
    expect(screen.page.locator(f"#call-{call['id']}")).to_contain_text("in progress")
    if settle:  # the answer's jobs (card, context) have finished and pushed the card
        stack.sender.drain(timeout=30)
        wait_for(lambda: _settled_call(stack, call["id"]), timeout=30)
    return screen, call["id"]


def _settled_call(stack: Stack, call_id: int) -> bool:
    return all(
        job.status not in ("queued", "running")
        for job in jobs(stack.engine)
        if job.call_id == call_id
    )


def _task(stack: Stack, call_id: int) -> dict:
    return next((t for t in stack.org.records("Task") if t["CallObject"] == str(call_id)), {})


def test_the_agent_sets_a_disposition_and_a_note_that_reach_aircall_and_the_task(
    stack: Stack, open_screen: Opener
) -> None:
    account = stack.org.insert("Account", {"Name": "Acme Corp"})
    stack.org.insert(
        "Opportunity",
        {
            "Name": "Acme renewal",
            "AccountId": account,
            "StageName": "Prospecting",
            "CloseDate": "2031-01-31",
        },
    )
    stack.org.insert(
        "Contact",
        {"FirstName": "Gary", "LastName": "Jennings", "Phone": CALLER, "AccountId": account},
    )
    for tag in ("Callback", "Sale"):
        stack.company.add_tag(tag)
    screen, call_id = _on_the_line(stack, open_screen, CALLER)
    card = screen.page.locator("#context-card")
    expect(card.get_by_role("link", name="Gary Jennings")).to_be_visible()
    expect(card.locator(".facts")).to_contain_text("Acme Corp")
    expect(card.locator(".facts")).to_contain_text("Acme renewal (Prospecting)")
    (insight,) = stack.company.insight_cards
    assert "Acme renewal (Prospecting)" in str(insight)

    card.get_by_label("Note").fill("Wants the premium plan")
    # A change pushed meanwhile (a tag set in the Aircall phone) keeps what is being typed.
    stack.company.tag(call_id, "Callback")
    row = screen.page.locator(f"#call-{call_id}")
    expect(row.locator(".tag")).to_have_text(["Callback"])
    expect(card.get_by_label("Note")).to_have_value("Wants the premium plan")
    card.get_by_label("Disposition").select_option("Sale")
    screen.screenshot("dashboard-disposition")
    card.get_by_role("button", name="Save to Aircall").click()
    expect(card.get_by_role("status")).to_have_text("Sent to Aircall.")
    expect(row.locator(".tag")).to_have_text(["Callback", "Sale"])  # Aircall's call.tagged

    # The job tags the call, then posts the note: wait for the note to land too.
    wait_for(lambda: stack.company.call(call_id)["comments"], timeout=30)
    in_aircall = stack.company.call(call_id)
    assert [t["name"] for t in in_aircall["tags"]] == ["Callback", "Sale"]
    assert [c["content"] for c in in_aircall["comments"]] == ["Wants the premium plan"]
    wait_for(
        lambda: "Wants the premium plan" in (_task(stack, call_id).get("Description") or ""),
        timeout=30,
    )
    assert _task(stack, call_id)["CallDisposition"] == "Callback, Sale"


def test_a_saved_note_stays_on_its_call_while_another_rings(
    stack: Stack, open_screen: Opener
) -> None:
    """Bug 8: a call ringing for the agent does not take the card from the call on the line,
    so the confirmation stays in sight there; the note reaches Aircall without an author (an
    API comment has none), and the card says so."""
    screen, call_id = _on_the_line(stack, open_screen, CALLER)
    card = screen.page.locator("#context-card")
    on_card = card.locator(f"#call-panel-{call_id}")
    expect(on_card).to_be_visible()
    card.get_by_label("Note").fill("Call back on Monday")
    card.get_by_role("button", name="Save to Aircall").click()
    expect(card.get_by_role("status")).to_have_text("Sent to Aircall.")
    expect(card.locator(".note-author")).to_contain_text("the note shows no author")

    (maya,) = stack.company.users
    (number,) = stack.company.numbers
    ringing = stack.company.start_call(
        direction="inbound", external="+14155550123", number_id=number, user_id=maya
    )
    ringing_row = screen.page.locator(f"#call-{ringing['id']}")
    expect(ringing_row).to_contain_text("ringing")
    stack.sender.drain(timeout=10)  # its webhooks are in: its changes have been pushed
    wait_for(lambda: stack.company.call(call_id)["comments"], timeout=30)
    (comment,) = stack.company.call(call_id)["comments"]
    assert comment["content"] == "Call back on Monday"
    assert comment["posted_by"] is None  # as in Aircall: a comment posted by the API has no owner
    assert stack.company.call(ringing["id"])["comments"] == []
    expect(on_card).to_be_visible()
    expect(card.get_by_role("status")).to_have_text("Sent to Aircall.")
    screen.screenshot("agent_saved_to_aircall")
    screen.page.reload()  # a fresh page, too, shows the call on the line before the ringing one
    expect(screen.page.locator("#live-status")).to_have_text("Live")
    expect(on_card).to_be_visible()

    # Once the saved call ends, the ringing one takes the card.
    stack.company.hangup(call_id)
    stack.company.end(call_id)
    expect(card.locator(f"#call-panel-{ringing['id']}")).to_be_visible()


def test_create_lead_asks_for_the_caller_and_makes_the_agent_its_owner(
    stack: Stack, open_screen: Opener
) -> None:
    """Bug 9: the form is pre-filled from the Aircall contact, says next to a field what
    Salesforce requires, and the Lead is the agent's, not the integration user's."""
    unknown = "+14155550177"
    with Session(stack.engine) as s:  # else the new Aircall contact gets its Salesforce Contact
        shipped = s.exec(select(Automation).where(Automation.builtin == "E13_create_contact"))
        definitions.set_enabled(stack.engine, shipped.one().id, False, by="test")
    stack.company.add_contact("Gary", "Jennings", [unknown], emails=["gary@acme.example"])
    screen, call_id = _on_the_line(stack, open_screen, unknown)
    (maya,) = (u["Id"] for u in stack.org.records("User") if u["Email"] == AGENT)
    card = screen.page.locator("#context-card")
    expect(card).to_contain_text("No Salesforce record has this number.")
    wait_for(lambda: _task(stack, call_id), timeout=30)  # logged at answer, on nobody yet
    expect(card.get_by_label("First name")).to_have_value("Gary")
    expect(card.get_by_label("Last name")).to_have_value("Jennings")
    expect(card.get_by_label("E-mail")).to_have_value("gary@acme.example")
    expect(card.get_by_label("Company")).to_have_value("")

    card.get_by_label("Company").fill("   ")  # the browser takes it; Salesforce would not
    card.get_by_role("button", name="Create Lead").click()
    error = card.locator(f"#lead-company-{call_id}-error")
    expect(error).to_have_text("Required: Salesforce needs a Company on every Lead.")
    expect(card.get_by_label("Last name")).to_have_value("Jennings")  # nothing typed is lost
    assert stack.org.records("Lead") == []
    screen.screenshot("create_lead_form")

    card.get_by_label("Company").fill("<b>Acme</b> & Co")
    card.get_by_role("button", name="Create Lead").click()
    expect(card.get_by_role("link", name="Gary Jennings")).to_be_visible(timeout=45_000)
    expect(card.locator(".facts")).to_contain_text("<b>Acme</b> & Co")  # shown, not markup
    expect(card.locator(".lead-owner")).to_have_count(0)
    (lead,) = stack.org.records("Lead")
    assert (lead["FirstName"], lead["LastName"]) == ("Gary", "Jennings")
    assert (lead["Company"], lead["Email"]) == ("<b>Acme</b> & Co", "gary@acme.example")
    assert lead["Phone"] == unknown
    assert lead["OwnerId"] == maya
    wait_for(lambda: _task(stack, call_id).get("WhoId") == lead["Id"], timeout=30)


def test_a_lead_for_an_agent_without_a_salesforce_user_says_who_owns_it(
    stack: Stack, open_screen: Opener
) -> None:
    unknown = "+14155550178"
    screen, _ = _on_the_line(stack, open_screen, unknown, in_salesforce=False)
    card = screen.page.locator("#context-card")
    expect(card.get_by_label("Last name")).to_have_value("")
    card.get_by_label("Last name").fill("Okafor")
    card.get_by_label("Company").fill("Globex")
    card.get_by_role("button", name="Create Lead").click()
    # A queued job makes the Lead, then the card is pushed: a deadline for a busy machine.
    expect(card.get_by_role("link", name="Okafor")).to_be_visible(timeout=45_000)
    expect(card.locator(".lead-owner")).to_contain_text("owned by the Callbridge integration user")
    (lead,) = stack.org.records("Lead")
    assert lead["OwnerId"] == stack.org.run_as_user_id
    assert (lead["LastName"], lead["Company"]) == ("Okafor", "Globex")


def test_a_card_pushed_while_the_agent_types_a_lead_keeps_what_was_typed(
    stack: Stack, open_screen: Opener
) -> None:
    """Aircall's webhooks push the card again at any time (here a colleague's comment): the
    caller panel refreshes, and the Lead form keeps its typed text and the keyboard's focus."""
    screen, call_id = _on_the_line(
        stack, open_screen, "+14155550179", in_salesforce=False, settle=False
    )
    page = screen.page
    card = page.locator("#context-card")
    card.get_by_label("Last name").click()
    page.keyboard.type("Oka")
    with page.expect_response(lambda r: r.url.endswith(f"/calls/{call_id}/caller")):
        stack.company.comment(call_id, "Asked for a quote")
    page.keyboard.type("for")
    page.keyboard.press("Tab")
    page.keyboard.type("Globex")
    expect(card.get_by_label("Last name")).to_have_value("Okafor")
    expect(card.get_by_label("Company")).to_have_value("Globex")
    card.get_by_role("button", name="Create Lead").click()
    expect(card.get_by_role("link", name="Okafor")).to_be_visible(timeout=45_000)
    (lead,) = stack.org.records("Lead")
    assert (lead["LastName"], lead["Company"]) == ("Okafor", "Globex")


def test_the_agent_picks_one_of_several_matches_and_it_is_remembered(
    stack: Stack, open_screen: Opener
) -> None:
    older = stack.org.insert("Contact", {"LastName": "Front Desk", "Phone": CALLER})
    stack.org.insert("Contact", {"LastName": "Reception", "Phone": CALLER})
    screen, call_id = _on_the_line(stack, open_screen, CALLER)
    card = screen.page.locator("#context-card")
    expect(card).to_contain_text("2 Salesforce records have this number")
    card.get_by_role("button", name="Pick Front Desk").click()
    expect(card.locator(".caller .record")).to_contain_text("Front Desk")
    expect(card.get_by_role("button", name="Pick Reception")).to_have_count(0)
    wait_for(lambda: _task(stack, call_id).get("WhoId") == older, timeout=30)
    settled(stack.engine, "caller_context")


def test_the_reminder_counts_every_untagged_call_not_only_the_five_listed(
    stack: Stack, open_screen: Opener
) -> None:
    agent = stack.company.add_user("Maya Patel", AGENT)
    number = stack.company.add_number("Sales line", "+1 212 555 0199")
    stack.company.add_tag("Sale")
    add_account(stack.engine, AGENT, "agent")
    calls = [
        answered_inbound_call(stack.company, number["id"], agent["id"], CALLER) for _ in range(7)
    ]
    stack.sender.drain(timeout=10)
    settled(stack.engine, "log_call", count=7)

    screen = open_screen(stack.app.url)
    screen.sign_in(AGENT)
    reminder = screen.page.locator("#untagged-reminder")
    expect(reminder).to_contain_text("7 of your calls ended without a disposition.")
    expect(reminder).to_contain_text("the newest 5 are below")
    expect(reminder.locator("li")).to_have_count(5)

    stack.company.tag(calls[0], "Sale", user_id=agent["id"])
    stack.sender.drain(timeout=10)
    wait_for(lambda: untagged.untagged_for_agent(stack.engine, AGENT)[1] == 6, timeout=15)
    screen.page.reload()
    expect(reminder).to_contain_text("6 of your calls ended without a disposition.")


def test_a_call_in_progress_shows_its_task_waiting_and_no_duration(
    stack_with: StackWith, open_screen: Opener
) -> None:
    """With the Task logged at the end (the default), the answered call's Task sync has run
    and made nothing yet: it says so, and the call has no 0:00 duration before it ends."""
    with stack_with(live_poll_seconds=0.05, task_logged_at="end") as stack:
        add_account(stack.engine, "sam@example.com", "manager")
        screen, call_id = _on_the_line(stack, open_screen, CALLER)
        (job,) = settled(stack.engine, "log_call")
        assert job.result == {"waiting": "call.ended"}
        assert stack.org.records("Task") == []
        row = screen.page.locator(f"#call-{call_id}")
        expect(row.locator(".job", has_text="Task")).to_have_text(
            "waiting for the call to end Salesforce Task"
        )
        assert row.locator(".job.done", has_text="Task").count() == 0

        manager = open_screen(stack.app.url)
        manager.sign_in("sam@example.com")
        manager.go("/review")
        review = manager.page.locator(f"#review-call-{call_id}")
        expect(review.locator("td.num")).to_have_text("in progress")
        expect(review.locator(".badge.waiting")).to_be_visible()
        manager.go(f"/calls/{call_id}")
        expect(manager.page.locator("main p.meta").first).not_to_contain_text("· 0:00 ·")
        expect(manager.page.locator("#call-jobs")).to_contain_text("waiting for the call to end")

        stack.company.hangup(call_id)
        stack.company.end(call_id)
        expect(row.locator(".job.done", has_text="Task")).to_be_visible()
        assert _task(stack, call_id)
        for tab in (screen, manager):
            tab.page.close()  # before the app stops: its socket would report the refusal
