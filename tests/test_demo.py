"""``make demo`` twice: each run starts fresh, says so, prints the sign-ins once calls flow, and
keeps its certificate authority."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from integrations.loopback import wait_for


def _run_demo(data_dir: Path) -> list[str]:
    """Start the demo, wait for its second banner (calls are flowing), stop it with Ctrl-C."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(  # noqa: S603  (our own command)
        [
            sys.executable,
            "-m",
            "web.cli",
            "demo",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--calls",
            "3",
            "--pace",
            "0.01",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        lines.extend(iter(process.stdout.readline, ""))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(
            lambda: sum("Callbridge demo running." in line for line in lines) >= 2,
            timeout=90,
            interval=0.2,
        )
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        reader.join(timeout=5)
    return lines


def test_the_demo_runs_again_from_a_fresh_database(tmp_path: Path) -> None:
    first = _run_demo(tmp_path)
    assert not any("fresh demo database" in line for line in first)
    assert any("Sign in as manager" in line for line in first[-10:])
    ca = (tmp_path / "tls" / "ca.pem").read_bytes()
    second = _run_demo(tmp_path)
    assert (tmp_path / "tls" / "ca.pem").read_bytes() == ca  # a browser trusting it still does
    assert any("Starting from a fresh demo database" in line for line in second)
    assert sum("Sign in as manager" in line for line in second) == 2
