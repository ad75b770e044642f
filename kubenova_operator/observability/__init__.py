"""Metrics, traces, logs: what an operator of Kubenova watches it by."""
