"""Callbridge's exceptions, one tree, read by the retry policy and the manager's screen.

CallbridgeError
├── BadInput              a request we refuse (bad JSON, wrong envelope shape): 400
├── BadToken              a webhook whose token matches none configured: 401
├── NotConfigured         a setting that production needs is missing
└── RemoteError           Aircall or Salesforce answered with an error (service, status, body)
    ├── RemoteUnavailable transient: timeout, reset, 5xx, 429, UNABLE_TO_LOCK_ROW: retry later
    ├── SessionExpired    Salesforce INVALID_SESSION_ID: fetch a new token once, replay
    └── RemoteRejected    permanent: the body is kept verbatim for the manager
"""

from __future__ import annotations


class CallbridgeError(Exception):
    """Root of every error Callbridge raises on purpose."""


class BadInput(CallbridgeError):
    """The caller sent something we cannot accept; the message says what, briefly."""


class BadToken(CallbridgeError):
    """A webhook delivery whose token is not one of ours."""


class NotConfigured(CallbridgeError):
    """A required setting is missing; the message names the environment variable."""


class RemoteError(CallbridgeError):
    """An error answer from Aircall or Salesforce."""

    def __init__(self, service: str, status: int | None, body: object, message: str = "") -> None:
        self.service = service
        self.status = status
        self.body = body
        super().__init__(message or f"{service} answered {status}: {body!r}"[:2000])

    @property
    def error_code(self) -> str | None:
        """Salesforce's ``errorCode`` of the first error in the body, when there is one."""
        body = self.body
        if isinstance(body, list) and body and isinstance(body[0], dict):
            code = body[0].get("errorCode") or body[0].get("statusCode")
            return str(code) if code else None
        if isinstance(body, dict):
            code = body.get("errorCode") or body.get("error")
            return str(code) if code else None
        return None


class RemoteUnavailable(RemoteError):
    """Worth retrying. ``retry_at`` (epoch seconds) is set when the service said when.

    ``ambiguous`` means the request may have taken effect (a timeout or dropped connection after
    sending): a create must be looked up before it is sent again.
    """

    def __init__(
        self,
        service: str,
        status: int | None,
        body: object,
        message: str = "",
        *,
        retry_at: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(service, status, body, message)
        self.retry_at = retry_at
        self.ambiguous = ambiguous


class BudgetExhausted(RemoteUnavailable):
    """Our own shared request budget says wait: nothing was sent, so it is not an attempt."""


class SessionExpired(RemoteError):
    """Salesforce no longer accepts our access token."""


class RemoteRejected(RemoteError):
    """A permanent refusal; retrying the same request cannot succeed."""
