"""An agent's phone, or a narrow side window: the dashboard and a call's page at 390 px wide."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.test_screens import AGENT, CALLER, Opener, people
from tests.conftest import Stack


def _overflow(screen: object) -> int:
    """How many pixels the page is wider than the window (0: nothing to scroll sideways)."""
    page = screen.page  # type: ignore[attr-defined]
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_the_dashboard_and_a_call_fit_390_px(stack: Stack, open_screen: Opener) -> None:
    agent_id, number_id = people(stack)
    screen = open_screen(stack.app.url)
    screen.page.set_viewport_size({"width": 390, "height": 844})
    screen.sign_in(AGENT)
    call = stack.company.start_call(
        direction="inbound", external=CALLER, number_id=number_id, user_id=agent_id
    )
    stack.company.answer(call["id"], user_id=agent_id)
    expect(screen.page.locator("#context-card")).to_contain_text("Gary Jennings")
    screen.screenshot("dashboard_390")
    assert _overflow(screen) <= 0
    screen.go(f"/calls/{call['id']}")
    expect(screen.page.locator("h1")).to_contain_text("Gary Jennings")
    screen.screenshot("call_390")
    assert _overflow(screen) <= 0
