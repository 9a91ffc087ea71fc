"""How long a server asks us to wait: Retry-After and Backoff header values in seconds.

Shared by the digest fetcher (httpx) and the Zotero client (httpx2 under pyzotero).
"""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime


def wait_seconds(value: str | None) -> float | None:
    """Seconds from a header value: a (decimal) number or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        return number if math.isfinite(number) and number >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
