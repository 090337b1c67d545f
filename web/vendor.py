"""Copy the browser packages installed by ``npm ci`` into ``static/vendor/``.

Run as ``python -m web.vendor`` from the repository (after ``npm ci``). Only built files are
copied, the versions ``package-lock.json`` pins; no third-party code is committed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

FILES = {
    "htmx.org/dist/htmx.min.js": "htmx.min.js",
    "htmx-ext-ws/dist/ws.js": "ws.js",
    "chart.js/dist/chart.umd.min.js": "chart.umd.min.js",
}


def copy(node_modules: Path, target: Path) -> list[Path]:
    """Copy each file (with its package's licence); fail naming the first one missing."""
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for source, name in FILES.items():
        path = node_modules / source
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run `npm ci` first")
        copied.append(Path(shutil.copyfile(path, target / name)))
        package = source.split("/", 1)[0]
        for licence in sorted((node_modules / package).glob("LICENSE*")):
            copied.append(Path(shutil.copyfile(licence, target / f"{package}.{licence.name}")))
    return copied


def main() -> int:
    root = Path(__file__).resolve().parent.parent  # a source checkout, where npm ci ran
    target = root / "static" / "vendor"
    try:
        copied = copy(root / "node_modules", target)
    except FileNotFoundError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    sys.stdout.write(f"copied {len(copied)} files into {target}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
