"""Names the config's loading and its validation share (here, so neither imports the other)."""

from __future__ import annotations

import re

ENV_PREFIX = "FEEDSYNC_"
REDACTED = "********"
# Slugs become file names and URL path segments; "all" and "index" name our own files.
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")
RESERVED_SLUGS = frozenset({"all", "index", "healthz"})
