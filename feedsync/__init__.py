"""feedsync: Hugging Face Daily Papers as filtered per-topic RSS/Atom feeds."""

__version__ = "0.1.0"
