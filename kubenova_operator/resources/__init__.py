"""Builders: pure functions from a spec to the child objects Kubenova wants to exist.

Nothing here talks to the API server. Controllers call these and hand the result to the
one applier (`kubenova_operator.kube.applier`), which makes it so with server-side apply.
"""
