"""Why a kubeconfig cannot be issued: shared by the controller that issues them and
the aggregated API that mints them on demand, neither importing the other."""

from __future__ import annotations


class CredentialRefused(Exception):
    """The request cannot be served as it is: `reason` (a CamelCase word, as in
    conditions) and a message for humans (never a token)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
