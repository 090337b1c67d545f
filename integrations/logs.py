"""Logging set-up: one line per event, with secrets masked wherever they slip in."""

from __future__ import annotations

import logging
import re

_SECRET = re.compile(
    r"""(?ix)
    (authorization:\s*(?:basic|bearer|oauth)\s+)[^\s'"]+      # HTTP auth headers
    | ("?(?:token|access_token|client_secret|api_token|password|assertion)"?\s*[:=]\s*"?)[^\s'",&}]+
    | (00D[A-Za-z0-9]{12,15}!)[A-Za-z0-9._]+                  # Salesforce session ids
    """
)


def redact(text: str) -> str:
    """Mask credential values, keeping their names so the log still says what was there."""
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2) or m.group(3) or "") + "***", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


class _Formatter(logging.Formatter):
    """``time level logger event key=value ...`` from the record's ``extra``."""

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in self._STANDARD}
        if extras:
            line += " " + " ".join(f"{key}={value}" for key, value in sorted(extras.items()))
        return redact(line)


def setup(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
