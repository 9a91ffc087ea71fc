"""Publish: decide which files changed, render them, and write them atomically."""
