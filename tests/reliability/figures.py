"""Figures of the reliability suite: printed at the end of the run, optionally saved.

``record(name, figures)`` keeps a figure for the terminal summary (see conftest.py) and,
when ``FEEDSYNC_FIGURES`` names a file, appends it there as one JSON line, so a long run
leaves a record the README's Reliability section is written from.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

COLLECTED: list[tuple[str, Any]] = []
# Read at import: the suite's fixtures clear FEEDSYNC_* variables before each test.
TARGET = os.environ.get("FEEDSYNC_FIGURES")


def record(name: str, figures: Any) -> None:
    COLLECTED.append((name, figures))
    print(f"\nfigure: {name}: {figures}")
    target = TARGET
    if target:
        line = {"name": name, "figures": figures, "when": datetime.now(UTC).isoformat()}
        with open(target, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
