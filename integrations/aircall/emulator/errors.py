"""Errors the emulated Aircall answers with.

``AircallError`` carries what the REST layer renders as ``{"error", "troubleshoot"}``; Python
callers of :class:`Company` get the same exception, so a refused lifecycle step reads the same
whether it came over HTTP or not.

    AircallError (status)
    ├── BadRequest      400: invalid payload or a business rule (6th comment, ...)
    ├── NotFound        404: unknown id
    └── Unprocessable   422: dialer number already queued
"""

from __future__ import annotations


class AircallError(Exception):
    status = 500
    error = "Internal Server Error"

    def __init__(self, troubleshoot: str) -> None:
        super().__init__(troubleshoot)
        self.troubleshoot = troubleshoot

    def body(self) -> dict[str, str]:
        return {"error": self.error, "troubleshoot": self.troubleshoot}


class BadRequest(AircallError):
    status = 400
    error = "Bad Request"


class NotFound(AircallError):
    status = 404
    error = "Not Found"


class Unprocessable(AircallError):
    status = 422
    error = "Unprocessable Entity"
