"""Show every reliability figure recorded during the run in the terminal summary."""

from __future__ import annotations

from typing import Any

from tests.reliability.figures import COLLECTED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if COLLECTED:
        terminalreporter.section("reliability figures")
        for name, figures in COLLECTED:
            terminalreporter.write_line(f"{name}: {figures}")
