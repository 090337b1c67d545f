"""An Aircall emulator: company state, webhook deliveries and the REST API, on loopback.

    company = Company()
    agent = company.add_user("Jane Agent", "jane@example.com")
    line = company.add_number("Support", "+14155550100")
    company.add_webhook("http://127.0.0.1:8000/webhooks/aircall")
    with WebhookSender(company), serve(create_app(company)) as api:
        call = company.start_call(direction="inbound", external="+442071838750",
                                  number_id=line["id"], user_id=agent["id"])

It follows ``/work/shared/contracts/aircall.md``; where that contract is unsure, the emulator
takes the reading that is harder on clients.

Modules, listed so that each imports only modules after it: ``app`` (REST handlers and routes)
and ``sender`` (webhook HTTP and retries); ``edge`` (the ``/v1`` gateway: auth, rate limit,
faults); ``company`` (``Company``: people, numbers, tags, webhooks, dialer), which joins
``calls`` (a call's lifecycle), ``contacts`` and ``deliveries`` (webhook queue and log); at the
bottom ``catalogue`` (fixed Aircall facts), ``errors`` and ``faults``.
"""

from .app import create_app
from .catalogue import ALL_EVENTS
from .company import Company
from .errors import AircallError, BadRequest, NotFound, Unprocessable
from .faults import Fault, FaultPlan
from .sender import WebhookSender

__all__ = [
    "ALL_EVENTS",
    "AircallError",
    "BadRequest",
    "Company",
    "Fault",
    "FaultPlan",
    "NotFound",
    "Unprocessable",
    "WebhookSender",
    "create_app",
]
