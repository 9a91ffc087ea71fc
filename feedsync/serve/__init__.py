"""Serve: the ASGI app that serves the published files, and the health rule."""
