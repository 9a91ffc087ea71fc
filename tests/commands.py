"""Starting feedsync as a user's terminal would, for the tests that signal it."""

from __future__ import annotations

import subprocess
import sys

# A shell that starts the tests in the background has them ignore SIGINT, and children
# inherit that: this gives the command the default back, as in a terminal, then starts it.
_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def start_feedsync(*args: str) -> subprocess.Popen[str]:
    """``python -m feedsync ARGS`` with Ctrl-C as a terminal delivers it; output piped."""
    return subprocess.Popen(
        [sys.executable, "-c", _DEFAULT_SIGINT, "-m", "feedsync", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
