"""Render: feeds, entry fragments, OPML and the index page as deterministic bytes (pure)."""
