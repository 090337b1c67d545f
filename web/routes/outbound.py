"""Salesforce Outbound Messages (T05): check the URL's secret and the org, read the records fresh,
store, then Ack; SOAP faults otherwise (Salesforce sends a refused message again later)."""

from __future__ import annotations

import hmac
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from integrations.errors import BadInput, NotConfigured, RemoteError
from integrations.salesforce import outbound
from integrations.settings import Settings
from integrations.sync.salesforce_triggers import delivery, reread
from web.org_fields import salesforce
from web.routes.metrics import counted
from web.routes.webhooks import read_body
from web.security import BodyTooLarge

log = logging.getLogger(__name__)

OFF = "off: OUTBOUND_MESSAGE_TOKEN is not set"


def _soap(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8")


def status(settings: Settings) -> str:
    """What Health says about this endpoint."""
    return "on" if settings.outbound_message_token.get_secret_value() else OFF


def _token_matches(given: str, settings: Settings) -> bool:
    expected = settings.outbound_message_token.get_secret_value().encode()
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected)


@counted("salesforce")
async def outbound_message(request: Request) -> Response:
    settings = request.app.state.settings
    if not settings.outbound_message_token.get_secret_value():
        return _soap(outbound.fault(f"Outbound Messages are {OFF}", "Server"), 503)
    # The OrganizationId is no secret (every user of the org can read it): the URL's is.
    if not _token_matches(request.path_params.get("token", ""), settings):
        log.warning("outbound.bad_token")
        return _soap(outbound.fault("wrong or missing token in the URL"), 403)
    try:
        message = outbound.parse(await read_body(request, outbound.MAX_BODY))
        outbound.check_sender(message, settings.salesforce_org_id)
        if settings.outbound_message_reread:
            message = await _fresh(request, message)
    except BodyTooLarge:
        return _soap(outbound.fault("body larger than 1 MiB"), 413)
    except BadInput as exc:
        return _soap(outbound.fault(str(exc)), 400)
    except outbound.ForeignOrganization as exc:
        # Salesforce keeps retrying for 24 h: a wrong SALESFORCE_ORG_ID shows up here.
        log.warning("outbound.foreign_org", extra={"org_id_set": bool(settings.salesforce_org_id)})
        return _soap(outbound.fault(str(exc)), 403)
    except NotConfigured as exc:
        return _soap(outbound.fault(str(exc), "Server"), 503)
    except RemoteError as exc:
        log.warning("outbound.reread_failed", extra={"status": exc.status})
        return _soap(
            outbound.fault("Salesforce could not be read; send again later", "Server"), 503
        )
    await run_in_threadpool(delivery.accept_notifications, request.app.state.engine, message)
    return _soap(outbound.ACK)  # only now: every notification is committed


async def _fresh(request: Request, message: outbound.OutboundMessage) -> outbound.OutboundMessage:
    """Only the records that exist, with Salesforce's values now (``OUTBOUND_MESSAGE_REREAD``)."""
    sf = salesforce(request)
    if sf is None:
        raise NotConfigured("OUTBOUND_MESSAGE_REREAD needs the Salesforce credentials")
    return await run_in_threadpool(reread.fresh, sf, message)
