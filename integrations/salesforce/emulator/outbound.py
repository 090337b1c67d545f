"""The emulator as the sender of Outbound Messages (T05): Salesforce's SOAP ``notifications``.

Each message carries the record's state at send time: ``sf:Id`` first, then the chosen fields
in ASCII order, nulls left out, datetimes with ``Z``. A delivery succeeds only on HTTP 200 with
a SOAP body whose ``Ack`` (outbound namespace) is ``true``; otherwise it is retried with a
growing gap until it succeeds or ``max_attempts`` is reached (Salesforce: 2 h cap, 24 h).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import httpx

from integrations.salesforce.ids import to18

from .org import Org

OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_serial = itertools.count(1)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.endswith("+0000") and "T" in value:
        return value[:-5] + "Z"  # outbound messages write datetimes with Z
    return escape(str(value))


def envelope(org: Org, notifications: list[tuple[str, str, dict[str, Any]]]) -> bytes:
    """``notifications()`` for (notification id, object, record) triples."""
    org15 = org.org_id[:15]
    items = []
    for nid, sobject, record in notifications:
        names = sorted(
            k for k, v in record.items() if k not in ("Id", "attributes") and v is not None
        )
        fields = "".join(f"<sf:{n}>{_text(record[n])}</sf:{n}>" for n in names)
        items.append(
            f"<Notification><Id>{nid}</Id>"
            f'<sObject xsi:type="sf:{sobject}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
            f"<sf:Id>{record['Id']}</sf:Id>{fields}</sObject></Notification>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        f'<notifications xmlns="{OUTBOUND_NS}">'
        f"<OrganizationId>{org.org_id}</OrganizationId>"
        '<ActionId>04k000000000001AAA</ActionId><SessionId xsi:nil="true"/>'
        f"<EnterpriseUrl>https://emulator.my.salesforce.com/services/Soap/c/59.0/{org15}"
        "</EnterpriseUrl>"
        f"<PartnerUrl>https://emulator.my.salesforce.com/services/Soap/u/59.0/{org15}</PartnerUrl>"
        + "".join(items)
        + "</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


def acknowledged(response: httpx.Response) -> bool:
    """Salesforce's rule: 200 and ``<Ack>true</Ack>`` in the outbound namespace."""
    if response.status_code != 200:
        return False
    try:
        root = ElementTree.fromstring(response.content)  # noqa: S314  (our own receiver's answer)
    except ElementTree.ParseError:
        return False
    ack = root.find(f".//{{{OUTBOUND_NS}}}Ack")
    return ack is not None and (ack.text or "").strip() == "true"


@dataclass
class OutboundSender:
    """Sends an action's messages to one endpoint, retrying until acknowledged."""

    org: Org
    url: str
    fields: dict[str, list[str]] = field(default_factory=dict)  # object -> fields sent
    base_delay: float = 1.0
    max_delay: float = 7200.0
    max_attempts: int = 20
    timeout: float = 60.0
    delivered: list[str] = field(default_factory=list)  # notification ids acknowledged

    def notify(self, sobject: str, record_id: str) -> bool:
        """Send the record's current state; True once acknowledged."""
        record = self.org.get(sobject, record_id) or {"Id": record_id}
        wanted = self.fields.get(sobject)
        if wanted:
            record = {k: v for k, v in record.items() if k == "Id" or k in wanted}
        nid = to18(f"04l{next(_serial):012d}")
        body = envelope(self.org, [(nid, sobject, record)])
        delay = self.base_delay
        for _ in range(self.max_attempts):
            try:
                response = httpx.post(
                    self.url,
                    content=body,
                    headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
                    timeout=self.timeout,
                )
                if acknowledged(response):
                    self.delivered.append(nid)
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(delay)
            delay = min(self.max_delay, delay * 2)
        return False
