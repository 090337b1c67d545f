"""Playwright drives Debian's chromium (browsers cannot be downloaded here) against the stack."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from sqlalchemy import Engine

from integrations.settings import Settings
from integrations.store import accounts
from tests.conftest import SettingsWith, _postgres_url
from tests.signin import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# ``make screenshots`` writes README's images; a plain test run keeps the work tree clean.
SCREENSHOTS = Path(
    os.environ.get("CALLBRIDGE_SCREENSHOTS")
    or Path(tempfile.gettempdir()) / "callbridge-screenshots"
).resolve()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One browser for this package; stopped after it, since Playwright's sync API keeps an
    event loop running on the main thread (``asyncio.run`` in later tests would fail)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # Two cores run the app, both emulators and Chromium: give conditions room to come true.
        expect.set_options(timeout=15_000)
        yield launched
        launched.close()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite unless a test asks for PostgreSQL (``indirect`` parametrization)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{tmp_path / 'callbridge.db'}"
    else:
        yield from _postgres_url()


@pytest.fixture
def settings(settings_with: SettingsWith) -> Settings:
    # The dashboard is about live calls: the Task follows the call as it happens.
    return settings_with(live_poll_seconds=0.05, task_logged_at="answer")


class Screen:
    """A browser tab; page errors (a CSP violation, a missing file) fail the test."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("dialog", self._dialog)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _dialog(self, dialog: object) -> None:
        self.dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.dismiss()  # type: ignore[attr-defined]

    def go(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def sign_in(self, email: str, password: str = PASSWORD) -> None:
        self.go("/signin")
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(self.base_url + "/")

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def screens(browser: Browser) -> Iterator[list[Screen]]:
    """Open tabs with ``open_screen``; each is checked for page errors at the end."""
    opened: list[Screen] = []
    yield opened
    for screen in opened:
        screen.page.context.close()
    for screen in opened:
        assert screen.errors == [], screen.errors


@pytest.fixture
def open_screen(browser: Browser, screens: list[Screen]):
    def open_(base_url: str) -> Screen:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        screen = Screen(context.new_page(), base_url)
        screens.append(screen)
        return screen

    return open_


def add_account(engine: Engine, email: str, role: str) -> None:
    accounts.add_user(engine, email, role, PASSWORD)
