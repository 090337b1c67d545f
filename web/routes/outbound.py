"""Salesforce Outbound Messages (T05): verify the org, store, then Ack; SOAP faults otherwise."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from integrations.errors import BadInput
from integrations.salesforce import outbound
from integrations.sync.salesforce_triggers import delivery
from web.errors import BodyTooLarge
from web.routes.webhooks import read_body

log = logging.getLogger(__name__)


def _soap(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8")


async def outbound_message(request: Request) -> Response:
    settings = request.app.state.settings
    try:
        message = outbound.parse(await read_body(request, outbound.MAX_BODY))
        outbound.check_sender(message, settings.salesforce_org_id)
    except BodyTooLarge:
        return _soap(outbound.fault("body larger than 1 MiB"), 413)
    except BadInput as exc:
        return _soap(outbound.fault(str(exc)), 400)
    except outbound.ForeignOrganization as exc:
        # Salesforce keeps retrying for 24 h: a wrong SALESFORCE_ORG_ID shows up here.
        log.warning("outbound.foreign_org", extra={"org_id_set": bool(settings.salesforce_org_id)})
        return _soap(outbound.fault(str(exc)), 403)
    await run_in_threadpool(delivery.accept_notifications, request.app.state.engine, message)
    return _soap(outbound.ACK)  # only now: every notification is committed
