"""Where templates and static files are, and the Jinja2 environment the pages render with.

From a wheel they sit inside the package (``web/templates``, ``web/static``: pyproject
force-includes them); from a source checkout, at the repository's root.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

import web
from integrations import safejson
from integrations.aircall.links import call_page
from integrations.health import report
from integrations.salesforce.links import record_link
from integrations.sync.automations.builder import step_label
from integrations.sync.automations.definitions import TRIGGER_WORDS
from integrations.sync.jobs.steps import step_words
from web import security


def _located(name: str) -> Path:
    packaged = Path(web.__file__).parent / name
    if packaged.is_dir():
        return packaged
    return Path(web.__file__).parent.parent / name


TEMPLATES = _located("templates")
STATIC = _located("static")


def duration(seconds: int | None) -> str:
    """``4:05``, or ``1:02:03`` past an hour."""
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        seconds = 0  # whatever a stored payload holds, the page still renders
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def pretty(value: object) -> str:
    """JSON for people to read; the template escapes it like any other text."""
    return safejson.clean_text(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


def _printable(value: object) -> object:
    """Every ``{{ }}`` output: a lone surrogate in stored text would make the UTF-8 response
    unencodable (a 500 for every page showing the row)."""
    if not isinstance(value, str):
        return value
    cleaned = safejson.clean_text(value)
    return value if cleaned is value else type(value)(cleaned)  # Markup stays Markup


def _context(request: Request) -> dict[str, Any]:
    return {
        "user": getattr(request.state, "user", None),
        "csrf_token": security.csrf_token(request),
        "csrf_field": security.CSRF_FIELD,
        "csrf_header": security.CSRF_HEADER,
        "health_problems": _health_problems(request),
    }


def _health_problems(request: Request) -> int | None:
    """What the top bar warns about: the last Health run's count (a cached store read)."""
    engine = getattr(request.app.state, "engine", None)
    user = getattr(request.state, "user", None)
    if engine is None or user is None or not user.is_manager:
        return None
    return report.problems_found(engine)


def make_templates(zone: str, call_url: str = "") -> Jinja2Templates:
    """Autoescaping templates (Starlette turns it on) with the app's time zone for dates and
    ``AIRCALL_CALL_URL`` for links to a call in the Aircall Dashboard."""
    tz = ZoneInfo(zone)

    def when(timestamp: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if not isinstance(timestamp, int | float) or not 0 <= timestamp < 2**37:
            return ""
        return datetime.fromtimestamp(timestamp, UTC).astimezone(tz).strftime(fmt)

    templates = Jinja2Templates(directory=TEMPLATES, context_processors=[_context])
    templates.env.finalize = _printable
    templates.env.filters["when"] = when
    templates.env.filters["duration"] = duration
    templates.env.filters["pretty"] = pretty
    templates.env.globals["record_link"] = record_link
    templates.env.globals["aircall_link"] = partial(call_page, call_url)  # None: no link
    templates.env.globals["step_label"] = step_label  # an action code in words
    templates.env.globals["step_words"] = step_words  # a recorded step in words
    templates.env.globals["trigger_words"] = TRIGGER_WORDS
    return templates


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """A page from the app's templates (``make_templates``), with its status."""
    return request.app.state.templates.TemplateResponse(request, name, context, status_code=status)
