"""``callbridge demo``: the app with both emulators, seeded data and generated calls.

A newcomer with no credentials watches calls flow from the Aircall emulator into the
Salesforce emulator. Everything runs on loopback; production code paths are used throughout.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import threading
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

import click
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, select

from integrations.aircall.emulator import Company, WebhookSender
from integrations.aircall.emulator import create_app as aircall_app
from integrations.aircall.traffic import generate_calls
from integrations.errors import BadInput
from integrations.loopback import serve, wait_for
from integrations.phones import to_e164
from integrations.salesforce.emulator import Org, make_tls
from integrations.salesforce.emulator import create_app as salesforce_app
from integrations.salesforce.emulator.outbound import OutboundSender
from integrations.settings import Settings
from integrations.store import accounts, db
from integrations.store.models import Call
from integrations.sync.automations import dispositions
from integrations.sync.runtime import prepare

AGENTS = [("Maya Patel", "maya@callbridge.demo"), ("Leo Martin", "leo@callbridge.demo")]
MANAGER = ("Sam Rivera", "sam@callbridge.demo")


def seed_salesforce(org: Org) -> list[str]:
    """Users, an account with contacts and an open opportunity, and some leads."""
    for name, email in [*AGENTS, MANAGER]:
        org.add_user(name, email)
    account = org.insert("Account", {"Name": "Acme Corp", "Phone": "+1 415 555 0100"})
    contacts = [
        ("Gary", "Jennings", "(415) 555-0101"),
        ("Priya", "Shah", "+14155550102"),
        ("Tom", "Becker", "415.555.0103"),
    ]
    for first, last, phone in contacts:
        org.insert(
            "Contact",
            {
                "FirstName": first,
                "LastName": last,
                "Phone": phone,
                "AccountId": account,
                "Email": f"{first.lower()}@acme.example",
            },
        )
    org.insert(
        "Opportunity",
        {
            "Name": "Acme Corp - 50 seats",
            "StageName": "Prospecting",
            "AccountId": account,
            "CloseDate": (date.today() + timedelta(days=30)).isoformat(),
        },
    )
    leads = [("Ana", "Lopez", "Globex", "+1 212 555 0104"), ("Ken", "Ito", "Initech", "2125550105")]
    for first, last, company, phone in leads:
        org.insert(
            "Lead", {"FirstName": first, "LastName": last, "Company": company, "Phone": phone}
        )
    # Salesforce holds these in assorted formats; Aircall shows callers in international form.
    phones = [phone for *_, phone in contacts] + [phone for *_, phone in leads]
    known = [to_e164(phone, "US") for phone in phones]
    return [*known, "+16465550106", "+442079460107"]  # the last two are unknown


DEMO_PASSWORD = "callbridge-demo"  # noqa: S105  (a throwaway demo account, printed on start)


def demo_accounts(engine: Engine) -> list[tuple[str, str, str]]:
    """A manager and an agent to sign in with (kept across runs of the demo)."""
    wanted = [("manager", MANAGER[1]), ("agent", AGENTS[0][1])]
    for role, email in wanted:
        with contextlib.suppress(BadInput):  # made by an earlier run of the demo
            accounts.add_user(engine, email, role, DEMO_PASSWORD)
    return [(role, email, DEMO_PASSWORD) for role, email in wanted]


# A fresh org has none of the brief's status names: point each disposition at a value it has.
FRESH_ORG_TARGETS = {
    "interested": ("Working - Contacted", "Qualification"),
    "booked": ("Working - Contacted", "Needs Analysis"),
    "not_interested": ("Closed - Not Converted", None),
    "no_answer": ("Working - Contacted", None),
    "voicemail_left": ("Working - Contacted", None),
    "callback": ("Working - Contacted", None),
    "wrong_number": ("Closed - Not Converted", None),
    "dnc": ("Closed - Not Converted", None),
}


def fresh_org_dispositions(engine: Engine) -> None:
    for key, (lead_status, stage) in FRESH_ORG_TARGETS.items():
        changes: dict[str, object] = {"lead_status": lead_status}
        if stage:
            changes["opportunity_stage"] = stage
        dispositions.set_rule(engine, key, by="demo", **changes)


def crm_activity(org: Org, company: Company, outbound_url: str) -> None:
    """What the people around the phones do: new Leads in Salesforce (T01), a contact saved in
    the Aircall phone (E13), and an Outbound Message from a Salesforce flow (T05)."""
    sender = OutboundSender(org, outbound_url, base_delay=2.0, max_attempts=5)
    for n in itertools.count(1):
        time.sleep(15)
        digits = f"+1312555{n % 10000:04d}"
        org.insert(
            "Lead",
            {"FirstName": "Web", "LastName": f"Lead {n}", "Company": "Inbound Co", "Phone": digits},
        )
        time.sleep(10)
        company.add_contact("Saved", f"In Aircall {n}", [f"+1773555{n % 10000:04d}"])
        time.sleep(10)
        contact = org.insert(
            "Contact", {"LastName": f"Flow {n}", "Phone": f"+1415666{n % 10000:04d}"}
        )
        sender.notify("Contact", contact)


def seed_aircall(company: Company) -> tuple[list[int], int]:
    agents = [company.add_user(name, email)["id"] for name, email in AGENTS]
    number = company.add_number("Sales line", "+1 415 555 0199", country="US")
    return agents, number["id"]


def run(host: str, port: int, data_dir: Path, calls: int, pace: float) -> None:
    """Start everything, print where to look, and stream calls until Ctrl-C.

    The emulators live in memory and start empty each time, so the demo's database does too:
    calls of an earlier run would share the new calls' ids."""
    data_dir.mkdir(parents=True, exist_ok=True)
    database = data_dir / "callbridge.db"
    old = [path for path in data_dir.glob("callbridge.db*") if path.is_file()]
    for path in old:
        path.unlink()
    if old:
        click.echo(f"Starting from a fresh demo database ({database} of the last run removed).")
    ca, cert, key = make_tls(data_dir / "tls")
    # The demo trusts its own emulator CA the standard way, as a deployment trusts a custom CA.
    os.environ["SSL_CERT_FILE"] = ca
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    org, company = Org(), Company()
    callers = seed_salesforce(org)
    agents, number_id = seed_aircall(company)
    token = secrets.token_hex(16)
    outbound_token = secrets.token_urlsafe(32)

    with ExitStack() as stack:
        sf = stack.enter_context(
            serve(salesforce_app(org), ssl_certfile=cert, ssl_keyfile=key, url_host="localhost")
        )
        ac = stack.enter_context(serve(aircall_app(company)))
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite:///{database}",
            aircall_api_url=ac.url,
            aircall_api_id=company.api_id,
            aircall_api_token=SecretStr(company.api_token),
            aircall_webhook_tokens=[SecretStr(token)],
            salesforce_login_url=sf.url,
            salesforce_client_id=org.client_id,
            salesforce_client_secret=SecretStr(org.client_secret),
            salesforce_org_id=org.org_id,
            salesforce_poll_seconds=5,  # T01/T02 show up within seconds in the demo
            outbound_message_token=SecretStr(outbound_token),
        )
        engine = db.make_engine(settings.database_url)
        prepare(engine)
        sign_ins = demo_accounts(engine)
        fresh_org_dispositions(engine)
        from web.app import create_app

        app = stack.enter_context(serve(create_app(settings, engine=engine), host=host, port=port))
        company.add_webhook(f"{app.url}/webhooks/aircall", token=token)
        sender = stack.enter_context(WebhookSender(company))
        accounts_text = "\n".join(
            f"  Sign in as {role:<8} {email} / {password}" for role, email, password in sign_ins
        )
        banner = (
            f"\nCallbridge demo running.\n"
            f"  Open              {app.url}/\n"
            f"{accounts_text}\n"
            f"  Salesforce Tasks  {sf.url}/__emulator/records/Task  (CA: {ca})\n"
            f"  Aircall state     {ac.url}/__emulator/state\n"
            f"Press Ctrl-C to stop.\n"
        )
        click.echo(banner)
        stop = threading.Event()

        def traffic() -> None:
            """``calls`` calls at a time, each round with new callers' timings, until stopped."""
            seed = 7
            while not stop.is_set():
                generate_calls(
                    company,
                    sender,
                    callers=callers,
                    agents=agents,
                    number_id=number_id,
                    count=calls,
                    seed=seed,
                    time_scale=pace,
                    stop=stop,
                    real_clock=True,  # one clock on every page: the calls' and the app's
                )
                seed += 1

        threading.Thread(target=traffic, daemon=True).start()
        # The workers' start-up lines come after the banner: say it again once calls flow.
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: _has_calls(engine), timeout=30, interval=0.2)
            click.echo(banner)
        threading.Thread(
            target=crm_activity,
            args=(org, company, f"{app.url}/webhooks/salesforce/outbound-message/{outbound_token}"),
            daemon=True,
        ).start()
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            stop.set()
            click.echo("stopping")


def _has_calls(engine: Engine) -> bool:
    with Session(engine) as s:
        return s.exec(select(Call.id).limit(1)).first() is not None
