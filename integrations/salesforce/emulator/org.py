"""One in-memory org: its users, schema changes, tokens and API allocation.

Records are kept by :mod:`.store` and written through :mod:`.lifecycle`; ``Org`` adds what tests,
the demo and the REST layer need around them.
"""

from __future__ import annotations

from collections import Counter

from ..ids import InvalidId, new_id, normalize, to18
from . import person_accounts
from .duplicates import DuplicateRule
from .faults import FaultPlan
from .lifecycle import RecordLifecycle
from .schema import custom_field
from .sessions import Allocation, CursorStore, TokenStore, WebServerFlow
from .values import format_datetime, now_utc


class Org(RecordLifecycle):
    """One Salesforce org held in memory.

    ``insert``/``records``/``get``/``add_user`` are for tests and the demo (no API usage counted);
    the REST layer calls ``create``/``retrieve``/``update``/``delete``/``upsert``, which raise
    ``ApiError`` exactly where Salesforce answers with an error array.
    """

    def __init__(
        self,
        *,
        org_id: str | None = None,
        client_id: str = "emulator-client",
        client_secret: str = "emulator-secret",  # noqa: S107 - a loopback test double's secret
        api_max: int = 15000,
        sosl_delay: float = 0.0,
        session_idle_seconds: float = 7200.0,
        jwt_public_key_pem: bytes | None = None,
        jwt_username: str | None = None,
        time_zone: str = "America/Los_Angeles",
    ) -> None:
        super().__init__(sosl_delay)
        self.org_id = to18(org_id) if org_id else new_id("00D")
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_max = api_max
        self.jwt_public_key_pem = jwt_public_key_pem
        self.query_batch_size = 2000
        self.faults = FaultPlan()
        self._allocation = Allocation()
        # API requests served, by method and resource ("POST composite/sobjects", "GET query"):
        # what a test or a bench counts by kind.
        self.requests: Counter[str] = Counter()
        # The SOQL and SOSL statements served, in order: what a test checks Callbridge asked.
        self.statements: list[str] = []
        # Active duplicate rules (``duplicates.STANDARD`` are the ones Salesforce ships).
        self.duplicate_rules: list[DuplicateRule] = []
        self._rule_ids: dict[str, str] = {}  # a rule's id stays the same across queries
        self._tokens = TokenStore(self.org_id, session_idle_seconds)
        # The web-server flow (``auth.authorize``): callback URLs, passwords, codes, refresh tokens.
        self.web_flow = WebServerFlow(self._tokens)
        self.cursors = CursorStore()
        self.schema_changed = now_utc()
        stamp = format_datetime(self.schema_changed)
        self._records["Organization"][self.org_id] = {
            "Id": self.org_id,
            "Name": "Callbridge Emulator Org",
            "TimeZoneSidKey": time_zone,
            "DefaultLocaleSidKey": "en_US",
            "LanguageLocaleKey": "en_US",
            "OrganizationType": "Developer Edition",
            "InstanceName": "EMU1",
            "IsSandbox": False,
            "CreatedDate": stamp,
            "LastModifiedDate": stamp,
            "SystemModstamp": stamp,
        }
        self.run_as_user_id = ""
        self.run_as_user_id = self.add_user("Integration User", "integration@example.com")
        run_as = self._records["User"][self.run_as_user_id]
        self.jwt_username = jwt_username or run_as["Username"]

    # -- test and demo helpers -------------------------------------------------------------

    def insert(self, sobject: str, fields: dict) -> str:
        """Seed a record as the API would create it, indexed for SOSL at once, not counted.

        It models data older than the org's triggers, validation and duplicate rules, which real
        orgs hold plenty of (duplicates among them), so those rules do not refuse it."""
        return self.create(sobject, fields, indexed_now=True, seeding=True)["id"]

    def merge(self, sobject: str, winner: str, loser: str) -> None:
        """What a person's merge does: the loser is deleted with ``MasterRecordId`` naming the
        winner, and its Tasks and Events move to the winner."""
        with self.lock:
            obj = self.sobject(sobject)
            loser_id, winner_id = normalize(loser), normalize(winner)
            gone = self._existing(obj, loser_id, missing_code="INVALID_CROSS_REFERENCE_KEY")
            self._existing(obj, winner_id, missing_code="INVALID_CROSS_REFERENCE_KEY")
            self._store(obj.name, {**gone, "IsDeleted": True, "MasterRecordId": winner_id})
            self._move_activities(loser_id, winner_id)

    def convert_lead(self, lead_id: str) -> str:
        """Lead conversion: an Account and a Contact made from the Lead, which is then
        ``IsConverted`` with ``ConvertedContactId``; its Tasks and Events move to the Contact.
        Returns the Contact's id."""
        with self.lock:
            lead = self._existing(
                self.sobject("Lead"), normalize(lead_id), missing_code="INVALID_CROSS_REFERENCE_KEY"
            )
            account = self.create("Account", {"Name": lead.get("Company") or lead["LastName"]})
            person = {k: lead.get(k) for k in ("FirstName", "LastName", "Phone", "Email")}
            contact = self.create("Contact", {**person, "AccountId": account["id"]})["id"]
            self._store(
                "Lead",
                {
                    **lead,
                    "IsConverted": True,
                    "Status": "Closed - Converted",
                    "ConvertedContactId": contact,
                    "ConvertedAccountId": account["id"],
                    "ConvertedDate": now_utc().date().isoformat(),
                },
            )
            self._move_activities(lead["Id"], contact)
            return contact

    def _move_activities(self, old: str, new: str) -> None:
        for name in ("Task", "Event"):
            for rec in list(self._records[name].values()):
                if rec.get("WhoId") == old and not rec.get("IsDeleted"):
                    self._store(name, {**rec, "WhoId": new})

    def records(self, sobject: str) -> list[dict]:
        """Copies of every live (not deleted) record of ``sobject``, as the REST API shows them."""
        with self.lock:
            obj = self.sobject(sobject)
            return [
                self.render(obj, rec)
                for rec in self._records[obj.name].values()
                if not rec.get("IsDeleted")
            ]

    def get(self, sobject: str, record_id: str) -> dict | None:
        with self.lock:
            obj = self.sobject(sobject)
            try:
                rec = self._records[obj.name].get(normalize(record_id))
            except InvalidId:
                return None
            if rec is None or rec.get("IsDeleted"):
                return None
            return self.render(obj, rec)

    def add_user(self, name: str, email: str, active: bool = True) -> str:
        """Add a User (Users cannot be created through the emulated API)."""
        first, _, last = name.rpartition(" ")
        with self.lock:
            taken = {u["Username"] for u in self._records["User"].values()}
            username, n = email, 1
            while username in taken:
                n += 1
                username = f"{email}.{n}"
            now = format_datetime(now_utc())
            user_id = new_id("005")
            record = self._blank(self.schema["User"])
            creator = self.run_as_user_id or user_id
            record.update(
                {
                    "Id": user_id,
                    "Username": username,
                    "FirstName": first or None,
                    "LastName": last,
                    "Name": name,
                    "Alias": (first[:1] + last)[:8].lower() or "user",
                    "Email": email,
                    "IsActive": active,
                    "TimeZoneSidKey": self.organization()["TimeZoneSidKey"],
                    "IsDeleted": False,
                    "CreatedDate": now,
                    "LastModifiedDate": now,
                    "SystemModstamp": now,
                    "CreatedById": creator,
                    "LastModifiedById": creator,
                }
            )
            self._store("User", record, indexed_now=True)
            return user_id

    def set_user_active(self, user_id: str, active: bool) -> None:
        with self.lock:
            record = dict(self._records["User"][normalize(user_id)])
            record["IsActive"] = active
            self._store("User", record, indexed_now=True)

    def user_by_username(self, username: str) -> dict | None:
        with self.lock:
            wanted = username.lower()
            users = self._records["User"].values()
            return next((dict(u) for u in users if u["Username"].lower() == wanted), None)

    def organization(self) -> dict:
        return self._records["Organization"][self.org_id]

    def table(self, sobject: str) -> list[dict]:
        if sobject == "DuplicateRule":
            return self._duplicate_rule_rows()
        return super().table(sobject)

    def _duplicate_rule_rows(self) -> list[dict]:
        """``DuplicateRule`` as SOQL reads it: one row per rule of ``duplicate_rules``."""
        stamp = format_datetime(self.schema_changed)
        rows = []
        for rule in self.duplicate_rules:
            rule_id = self._rule_ids.setdefault(rule.name, new_id("0Bm"))
            rows.append(
                {
                    "Id": rule_id,
                    "DeveloperName": rule.name,
                    "MasterLabel": rule.name.replace("_", " "),
                    "SobjectType": rule.sobject,
                    "IsActive": rule.active,
                    "IsDeleted": False,
                    "CreatedDate": stamp,
                    "LastModifiedDate": stamp,
                    "SystemModstamp": stamp,
                    "CreatedById": self.run_as_user_id,
                    "LastModifiedById": self.run_as_user_id,
                }
            )
        return rows

    # -- field-level security of the integration user (every API request runs as it) ----------

    def hide_field(self, sobject: str, field: str) -> None:
        """The integration user's profile loses read access: the field leaves describe, and
        SOQL, SOSL and writes naming it get ``INVALID_FIELD`` "No such column"."""
        self._set_security(sobject, field, hidden=True, read_only=False)

    def make_read_only(self, sobject: str, field: str) -> None:
        """Read access only: describe says not createable nor updateable, and writes naming it
        get ``INVALID_FIELD_FOR_INSERT_UPDATE``."""
        self._set_security(sobject, field, hidden=False, read_only=True)

    def show_field(self, sobject: str, field: str) -> None:
        """Read and edit access again (the default)."""
        self._set_security(sobject, field, hidden=False, read_only=False)

    def _set_security(self, sobject: str, field: str, *, hidden: bool, read_only: bool) -> None:
        with self.lock:
            obj = self.sobject(sobject)
            f = self._field(obj, field)
            self.security.check_permissionable(obj, f)
            key = (obj.name, f.name)
            for wanted, keys in (
                (hidden, self.security.hidden),
                (read_only, self.security.read_only),
            ):
                if wanted:
                    keys.add(key)
                else:
                    keys.discard(key)
            self.schema_changed = now_utc()

    def set_restricted(self, sobject: str, field: str, restricted: bool) -> None:
        with self.lock:
            f = self._field(self.sobject(sobject), field)
            f.restricted = restricted
            self.schema_changed = now_utc()

    def enable_person_accounts(self) -> None:
        """Turn Person Accounts on, as Setup does (for good): Account's describe gains
        ``IsPersonAccount``, ``PersonContactId`` and the person fields, and an Account created
        with ``LastName`` is a person with a hidden Contact (``person_accounts``)."""
        with self.lock:
            person_accounts.enable(self.schema, self._records)
            self.schema_changed = now_utc()

    def add_field(self, sobject: str, name: str, type: str, **props: object) -> None:
        """Add a custom field (``Foo__c``); props use describe names, e.g. ``externalId=True``."""
        with self.lock:
            obj = self.sobject(sobject)
            if obj.field(name):
                raise ValueError(f"{obj.name} already has a field {name}")
            f = custom_field(name, type, props)
            obj.fields[f.name] = f
            obj.reindex()
            for rec in self._records[obj.name].values():
                rec[f.name] = f.default if f.type == "boolean" else None
            person_accounts.add_field(self.schema, self._records, obj.name, f)
            self.schema_changed = now_utc()

    # -- tokens and the API allocation ----------------------------------------------------

    @property
    def session_idle_seconds(self) -> float:
        return self._tokens.idle_seconds

    @session_idle_seconds.setter
    def session_idle_seconds(self, value: float) -> None:
        self._tokens.idle_seconds = value

    def issue_token(self, user_id: str | None = None) -> str:
        return self._tokens.issue(user_id or self.run_as_user_id)

    def token_user(self, token: str) -> str | None:
        """The user a live token acts as (the identity URL's check), or None."""
        return self._tokens.user_of(token)

    def check_token(self, token: str) -> bool:
        """True for a live token; each use resets its idle timer (sessions time out idle)."""
        return self._tokens.check(token)

    def revoke_tokens(self) -> None:
        """Every issued token becomes invalid (401 INVALID_SESSION_ID)."""
        self._tokens.revoke_all()

    @property
    def api_used(self) -> int:
        """Requests counted in the trailing 24 hours."""
        return self._allocation.used()

    @api_used.setter
    def api_used(self, value: int) -> None:
        self._allocation.set_used(value)

    def count_call(self) -> bool:
        """Count one request; False (and not counted) when the allocation is used up."""
        return self._allocation.take(self.api_max)
