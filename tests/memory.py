"""A process's memory as Linux reports it, for the tests and the benchmark that measure it."""

from __future__ import annotations


def memory_kb(pid: int | str = "self", field: str = "VmRSS") -> int:
    """Resident memory now (``VmRSS``) or at its peak so far (``VmHWM``), in KiB; 0 if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return 0
    return 0
