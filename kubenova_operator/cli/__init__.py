"""`kubectl kubenova` (console scripts `kubectl-kubenova` and, for keygen/decrypt,
the older `kubenova`): see app.py and docs/cli.md."""

from .app import app, main

__all__ = ["app", "main"]
