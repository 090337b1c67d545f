"""Configuration: clear refusals naming the variable, and secrets that never print."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from integrations.errors import NotConfigured
from integrations.logs import redact
from integrations.secrets import new_key
from integrations.settings import Settings

COMPLETE = {
    "AIRCALL_API_ID": "id",
    "AIRCALL_API_TOKEN": "tok-secret-aircall",
    "AIRCALL_WEBHOOK_TOKENS": "t1, t2",
    "SALESFORCE_CLIENT_ID": "client",
    "SALESFORCE_CLIENT_SECRET": "sf-secret-value",
}


def test_environment_is_read_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in COMPLETE.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert [t.get_secret_value() for t in settings.aircall_webhook_tokens] == ["t1", "t2"]
    assert settings.salesforce_api_version == "59.0"
    assert settings.aircall_api_url == "https://api.aircall.io"
    settings.require_credentials()
    assert "sf-secret-value" not in repr(settings)
    assert "tok-secret-aircall" not in repr(settings)


@pytest.mark.parametrize("missing", list(COMPLETE))
def test_a_missing_credential_is_named(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    for name, value in COMPLETE.items():
        if name != missing:
            monkeypatch.setenv(name, value)
    with pytest.raises(NotConfigured, match=missing):
        Settings(_env_file=None).require_credentials()


def test_serve_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = subprocess.run(
        [sys.executable, "-m", "web.cli", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: AIRCALL_API_ID is not set: Callbridge cannot start without it"
        " (or set CALLBRIDGE_SECRET_KEY to connect from the browser)"
    )


def test_with_a_secret_key_it_starts_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Connections page supplies them (sealed with the key)."""
    monkeypatch.setenv("CALLBRIDGE_SECRET_KEY", new_key())
    Settings(_env_file=None).require_credentials()


def test_logs_mask_credentials() -> None:
    line = (
        "Authorization: Bearer 00Dxx0000001gPL!AR8AQJXg token=abc123 "
        '"client_secret": "s3cr3t" session 00DX0000000AbCd!AQ4AQFake'
    )
    masked = redact(line)
    for secret in ("AR8AQJXg", "abc123", "s3cr3t", "AQ4AQFake"):
        assert secret not in masked


def test_secret_fields_hide_their_value() -> None:
    assert "x" not in repr(SecretStr("x" * 8))
