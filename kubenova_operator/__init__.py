"""Kubenova: a multi-tenant application platform for Kubernetes."""

__version__ = "0.1.0"
