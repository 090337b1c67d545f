"""Everything Callbridge reads from the environment (or a ``.env`` file), typed and checked once."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from integrations.errors import NotConfigured

_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")


class Settings(BaseSettings):
    """Callbridge configuration; each field is the environment variable of its name in capitals."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", hide_input_in_errors=True, populate_by_name=True
    )

    database_url: str = "sqlite:///callbridge.db"
    # Fernet key(s) sealing the credentials entered in the browser; the first encrypts, any
    # decrypts (rotation). Empty: credentials come from the environment only.
    callbridge_secret_key: SecretStr = SecretStr("")
    metrics_token: SecretStr = SecretStr("")  # bearer token of GET /metrics; empty: it is off

    aircall_api_url: str = "https://api.aircall.io"
    aircall_api_id: str = ""
    aircall_api_token: SecretStr = SecretStr("")
    aircall_webhook_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    aircall_rate_limit: int = 120
    # The call's page in the Aircall Dashboard, ``{id}`` standing for the call id, for links
    # people open (the API's ``direct_link`` needs API credentials). Empty: no Aircall link.
    aircall_call_url: str = ""
    # How often the worker reads the webhook it registered back from Aircall (0: never).
    aircall_webhook_check_seconds: float = 300.0
    # On start, no webhook for this long while Aircall shows calls since: suggest a backfill.
    backfill_gap_minutes: float = 30.0  # 0 turns the check off

    salesforce_login_url: str = "https://login.salesforce.com"
    salesforce_client_id: str = ""
    salesforce_client_secret: SecretStr = SecretStr("")
    salesforce_username: str = ""
    salesforce_private_key_file: Path | None = None
    salesforce_api_version: str = "59.0"
    salesforce_org_id: str = ""
    # T05: the secret in the endpoint's URL (empty: the endpoint is off), and whether the
    # records a message names are read fresh from Salesforce before acting (one query).
    outbound_message_token: SecretStr = SecretStr("")
    outbound_message_reread: bool = True
    salesforce_timeout_seconds: float = 30.0
    salesforce_api_threshold: float = 0.9
    # Save past duplicate rules whose action is Alert (rules that Block still refuse)
    salesforce_duplicate_allow_save: bool = False
    # Writes of concurrent jobs wait at most this long to go as one Collections request; 0: never
    salesforce_batch_window_seconds: float = 0.8
    salesforce_poll_seconds: float = 60.0  # T01-T04 polling interval; 0 turns polling off
    salesforce_poll_objects: Annotated[list[str], NoDecode] = Field(default_factory=list)  # T03/T04

    # The org's zone: a Task's ActivityDate is its local date. Empty: the org's own setting
    # (Organization.TimeZoneSidKey), read once.
    salesforce_time_zone: str = ""

    # Call-log lifecycle: when the Task is created, and its Status per call type ("" = not logged).
    # "end": one request per call (the default: the org's daily API allocation is scarce);
    # "answer": a live Task that tags set during the call reach at once (about 3-5 per call).
    task_logged_at: Literal["answer", "end"] = "end"
    # A Task text field marked External ID and Unique (e.g. Aircall_Call_Id__c): the call's Task
    # is then written by upsert on the call id, so no retry can ever make a second one.
    task_external_id_field: str = ""
    task_log_delay_seconds: float = 10.0  # after call.ended: late comments join the create
    log_answered: str = "Completed"
    log_missed: str = "Completed"
    log_voicemail: str = "Completed"
    log_outbound_unanswered: str = "Completed"

    # Matching a caller to Salesforce records.
    match_priority: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["Contact", "Lead", "Account"]
    )
    match_multiple: Literal["newest", "review"] = "newest"
    log_only_matched: bool = False
    salesforce_phone_fields: Annotated[list[str], NoDecode] = Field(default_factory=list)
    create_unknown_callers: Literal["none", "lead", "contact"] = "none"
    # The record types (developer names) of the Leads, Contacts and Opportunities Callbridge
    # creates; empty: the org's default for the integration user.
    lead_record_type: str = ""
    contact_record_type: str = ""
    opportunity_record_type: str = ""
    # Disposition rules: the Contact field that holds a status (Contacts have none by default).
    disposition_contact_status_field: str = ""

    default_region: str = "US"
    retry_base_seconds: float = 2.0
    caller_cache_seconds: int = 3600
    worker_concurrency: int = 4  # jobs at once, besides the writers below
    worker_batch_jobs: int = 100  # calls' Tasks, automations, dispositions at once (batched)
    job_lease_seconds: float = 60.0
    job_max_attempts: int = 12

    # The browser side (issue 5).
    session_secret: SecretStr = SecretStr("")  # empty: one is generated and kept in the database
    public_url: str = ""  # https://callbridge.example.com behind a proxy: HSTS, Secure cookies
    session_cookie_secure: bool | None = None  # None: Secure over https (or an https PUBLIC_URL)
    session_max_age_seconds: int = 12 * 3600
    # Failed sign-ins allowed per email, and per client address, within the window (0: no limit).
    sign_in_failures_per_email: int = 5
    sign_in_failures_per_ip: int = 20  # higher: an office behind one address shares it
    sign_in_failure_window_seconds: float = 900.0
    salesforce_instance_url: str = ""  # base of record links; empty: SALESFORCE_LOGIN_URL
    live_poll_seconds: float = 0.5  # how often dashboards look for finished sync jobs
    display_time_zone: str = "UTC"  # dates on the pages; days of the review filters and charts

    @field_validator("aircall_webhook_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return [token.strip() for token in value.split(",") if token.strip()]
        return value

    @field_validator("match_priority", "salesforce_phone_fields", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("salesforce_poll_objects", mode="before")
    @classmethod
    def _split_objects(cls, value: object) -> object:
        if isinstance(value, str):
            value = [name.strip() for name in value.split(",") if name.strip()]
        for name in value if isinstance(value, list) else ():
            # Object names go into SOQL text: only API names are let through.
            if not isinstance(name, str) or not _API_NAME.fullmatch(name):
                raise ValueError(f"not a Salesforce object API name: {name!r}")
        return value

    @field_validator("aircall_call_url")
    @classmethod
    def _call_url_template(cls, value: str) -> str:
        if value and not (value.startswith(("https://", "http://")) and "{id}" in value):
            raise ValueError("must be an http(s) URL with {id} where the call id goes")
        return value

    @field_validator("salesforce_api_version")
    @classmethod
    def _bare_version(cls, value: str) -> str:
        return value.removeprefix("v")

    @field_validator("session_secret", "outbound_message_token")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters long")
        return value

    @property
    def record_base_url(self) -> str:
        """Where a Salesforce record id becomes a link a manager can open."""
        return (self.salesforce_instance_url or self.salesforce_login_url).rstrip("/")

    @property
    def salesforce_auth_flow(self) -> str:
        """``jwt`` when a username and key file are set, else ``client_credentials``."""
        if self.salesforce_username and self.salesforce_private_key_file:
            return "jwt"
        return "client_credentials"

    def require_credentials(self) -> None:
        """Refuse to serve without what production needs, naming the first missing variable.

        With ``CALLBRIDGE_SECRET_KEY`` set, credentials may instead be entered on the Connections
        page (stored sealed), so Callbridge starts without them and its Health page says so.
        """
        if self.callbridge_secret_key.get_secret_value():
            return
        missing = []
        if not self.aircall_api_id:
            missing.append("AIRCALL_API_ID")
        if not self.aircall_api_token.get_secret_value():
            missing.append("AIRCALL_API_TOKEN")
        if not self.aircall_webhook_tokens:
            missing.append("AIRCALL_WEBHOOK_TOKENS")
        if not self.salesforce_client_id:
            missing.append("SALESFORCE_CLIENT_ID")
        if self.salesforce_auth_flow == "client_credentials":
            if not self.salesforce_client_secret.get_secret_value():
                missing.append("SALESFORCE_CLIENT_SECRET")
        elif not self.salesforce_private_key_file.is_file():
            missing.append("SALESFORCE_PRIVATE_KEY_FILE")
        if missing:
            raise NotConfigured(
                f"{missing[0]} is not set: Callbridge cannot start without it"
                " (or set CALLBRIDGE_SECRET_KEY to connect from the browser)"
            )
