"""What the builder's pages share: the org's fields for their pickers (from describe, through the
worker's Salesforce client when it runs here), and how a refused form answers."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request

from integrations.errors import CallbridgeError, RemoteRejected
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.record_types import RecordTypeMissing
from integrations.salesforce.soql import api_name
from integrations.salesforce_connection import NOT_CONNECTED, TokenSource, available
from integrations.sync.automations import builder

UNREACHABLE = "Salesforce could not be reached, so its field names are not offered"
NOT_CONFIGURED = f"{NOT_CONNECTED}: field names are not offered"


def invalid_status(request: Request) -> int:
    """A refused form: 400 for a plain post; 200 for htmx, which swaps only 2xx answers."""
    return 200 if request.headers.get("HX-Request") else 400


def salesforce(request: Request) -> SalesforceClient | None:
    """The worker's client when it runs in this process (one describe cache), else our own;
    None while Salesforce is neither set up in the environment nor connected."""
    settings = request.app.state.settings
    engine = request.app.state.engine
    if not available(settings, engine):  # one row read by key
        return None
    running = getattr(request.app.state, "worker", None)
    if running is not None:
        return running.ctx.salesforce
    client = getattr(request.app.state, "admin_salesforce", None)
    if client is None:
        client = SalesforceClient(settings, TokenSource(settings, engine))
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
        except RecordTypeMissing as exc:
            problem = str(exc)
        except CallbridgeError as exc:
            problem = f"{UNREACHABLE} ({sobject}: {str(exc)[:300]})"
    return found, problem


def form_op(data: FormData) -> str:
    op = data.get("op")
    return op if isinstance(op, str) else "refresh"
