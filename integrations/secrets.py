"""Secrets at rest: credentials entered in the browser are stored encrypted with Fernet
(``cryptography``), under the key in ``CALLBRIDGE_SECRET_KEY``.

Several keys, comma-separated, rotate: the first encrypts, any decrypts. Without a key, storing
a secret is refused rather than written in clear.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from integrations.errors import NotConfigured

NO_KEY = (
    "CALLBRIDGE_SECRET_KEY is not set, so Callbridge cannot store credentials: generate one with "
    "`callbridge new-secret-key`, set it in the environment of the app and the worker, and restart"
)
BAD_KEY = (
    "CALLBRIDGE_SECRET_KEY is not a valid key (32 url-safe base64-encoded bytes): generate one "
    "with `callbridge new-secret-key`"
)
WRONG_KEY = (
    "a stored credential cannot be decrypted with CALLBRIDGE_SECRET_KEY (was the key changed? "
    "keep the old key after the new one, comma-separated, or connect again)"
)


def new_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    """Encrypts and decrypts small JSON documents (a token, an API id and secret)."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise NotConfigured(NO_KEY)
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])
        except (ValueError, TypeError) as exc:
            raise NotConfigured(BAD_KEY) from exc

    def __repr__(self) -> str:
        return "SecretBox(...)"

    def seal(self, secret: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(secret).encode()).decode()

    def open(self, sealed: str) -> dict[str, Any]:
        try:
            return json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken as exc:
            raise NotConfigured(WRONG_KEY) from exc
