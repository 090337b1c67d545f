"""The installed package carries its migrations, templates and static files, and the
``callbridge`` command works from any directory, installed editable or not."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_wheel_ships_migrations_templates_and_static(tmp_path: Path) -> None:
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("callbridge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "integrations/store/migrations/env.py" in names
    assert any(n.startswith("integrations/store/migrations/versions/0001") for n in names)
    assert any(n.startswith("web/templates/") for n in names)
    assert any(n.startswith("web/static/") for n in names)

    # Unpacked away from the source tree, the command migrates a database from another cwd.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    script = (
        "import sys; "
        "sys.path = [p for p in sys.path if 'work/main' not in p or 'site-packages' in p]; "
        f"sys.path.insert(0, {str(site)!r}); "
        "import web.cli, integrations; "
        f"assert integrations.__file__.startswith({str(site)!r}), integrations.__file__; "
        "web.cli.main(['migrate'])"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script],
        cwd=work,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{work / 'cb.db'}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "database is up to date" in result.stdout
