"""Salesforce Outbound Messages (T05): the SOAP ``notifications()`` call, read safely.

Parsing is namespace-aware (``Id`` exists in two namespaces) and refuses any DTD: with no
DOCTYPE there are no entity declarations, so no entity can expand (billion laughs) or reach out
(external entities). There is no signature: the sender is checked by its ``OrganizationId``.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field
from typing import Any, NoReturn
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat
from xml.sax.saxutils import escape

from integrations.errors import BadInput, CallbridgeError
from integrations.salesforce.ids import InvalidId, normalize

MAX_BODY = 1024 * 1024
MAX_NOTIFICATIONS = 100  # per message, as Salesforce documents

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SOBJECT = "urn:sobject.enterprise.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")

ACK = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">\n'
    b" <soapenv:Body>\n"
    b'  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">\n'
    b"   <Ack>true</Ack>\n"
    b"  </notificationsResponse>\n"
    b" </soapenv:Body>\n"
    b"</soapenv:Envelope>\n"
)


class ForeignOrganization(CallbridgeError):
    """An Outbound Message whose ``OrganizationId`` is not ``SALESFORCE_ORG_ID``: not acked."""


@dataclass(frozen=True)
class Notification:
    id: str  # 18-char notification id (04l…): the dedup key of this delivery
    sobject: str  # the record's object API name, from xsi:type="sf:Lead"
    record_id: str  # 18-char
    fields: dict[str, str | None] = field(default_factory=dict)  # values as sent (text)


@dataclass(frozen=True)
class OutboundMessage:
    organization_id: str
    action_id: str | None
    notifications: list[Notification]


def fault(message: str, code: str = "Client") -> bytes:
    """A SOAP 1.1 fault: Salesforce counts it as a failed delivery and sends again later."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">\n'
        " <soapenv:Body>\n"
        "  <soapenv:Fault>\n"
        f"   <faultcode>soapenv:{code}</faultcode>\n"
        f"   <faultstring>{escape(message)}</faultstring>\n"
        "  </soapenv:Fault>\n"
        " </soapenv:Body>\n"
        "</soapenv:Envelope>\n"
    ).encode()


def _refuse_dtd(*_: Any) -> NoReturn:
    raise BadInput("DTDs and entity declarations are not accepted")


def _name(raw: str) -> str:
    """expat's ``uri}local`` as ElementTree's ``{uri}local``."""
    return "{" + raw if "}" in raw else raw


def read_xml(body: bytes) -> Element:
    """The document's root element; malformed XML or any DTD is ``BadInput``."""
    builder = TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    parser.StartElementHandler = lambda tag, attrs: builder.start(
        _name(tag), {_name(key): value for key, value in attrs.items()}
    )
    parser.EndElementHandler = lambda tag: builder.end(_name(tag))
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise BadInput(f"malformed XML: {expat.ErrorString(exc.code)}") from None
    except (LookupError, ValueError) as exc:  # an unknown or lying encoding declaration
        raise BadInput(f"unreadable XML: {type(exc).__name__}") from None
    return builder.close()


def _text(element: Element | None) -> str | None:
    if element is None or element.get(f"{{{XSI}}}nil") == "true":
        return None
    return element.text or ""


def _id(value: str | None, what: str) -> str:
    try:
        return normalize((value or "").strip())
    except InvalidId:
        raise BadInput(f"{what} is not a Salesforce id") from None


def _notification(element: Element) -> Notification:
    notification_id = _id(_text(element.find(f"{{{OUTBOUND}}}Id")), "Notification/Id")
    record = element.find(f"{{{OUTBOUND}}}sObject")
    if record is None:
        raise BadInput("a Notification without its sObject")
    sobject = (record.get(f"{{{XSI}}}type") or "").rpartition(":")[2]
    if not _API_NAME.fullmatch(sobject):
        raise BadInput("sObject without a valid xsi:type")
    fields: dict[str, str | None] = {}
    for child in record:
        namespace, _, local = child.tag[1:].partition("}")
        if namespace == SOBJECT and len(child) == 0:
            fields[local] = _text(child)
    record_id = _id(fields.pop("Id", None), "sObject/Id")
    return Notification(notification_id, sobject, record_id, fields)


def parse(body: bytes) -> OutboundMessage:
    """An Outbound Message, or ``BadInput`` saying what is wrong with it."""
    root = read_xml(body)
    if root.tag != f"{{{SOAP}}}Envelope":
        raise BadInput("not a SOAP envelope")
    call = root.find(f"{{{SOAP}}}Body/{{{OUTBOUND}}}notifications")
    if call is None:
        raise BadInput("not an Outbound Message: no notifications element")
    org_id = (_text(call.find(f"{{{OUTBOUND}}}OrganizationId")) or "").strip()
    if not org_id:
        raise BadInput("OrganizationId is missing")
    action_id = (_text(call.find(f"{{{OUTBOUND}}}ActionId")) or "").strip()
    items = call.findall(f"{{{OUTBOUND}}}Notification")
    if not 1 <= len(items) <= MAX_NOTIFICATIONS:
        raise BadInput(f"a message holds 1 to {MAX_NOTIFICATIONS} notifications, not {len(items)}")
    notifications = [_notification(item) for item in items]
    return OutboundMessage(org_id, action_id[:18] if action_id else None, notifications)


def check_sender(message: OutboundMessage, expected_org_id: str) -> None:
    """Refuse a message from any org but ours (there is no signature to check).

    Ids are compared in their 18-char form (a 15-char id is extended first), in constant time.
    """
    try:
        ours = normalize(expected_org_id)
        theirs = normalize(message.organization_id)
    except InvalidId:
        raise ForeignOrganization("OrganizationId is not this org's") from None
    if not hmac.compare_digest(ours.encode(), theirs.encode()):
        raise ForeignOrganization("OrganizationId is not this org's")
