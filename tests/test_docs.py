"""The README documents every setting and starts with the two commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    assert f"`{name.upper()}`" in README


def test_ci_runs_the_readme_test_command() -> None:
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == "make test"
    assert "make test" in README.split("##")[0]
    assert "make demo" in README.split("##")[0]
