"""The local Kubernetes control plane Kubenova is tested and demonstrated on.

Built from the official Go modules (e2e/controlplane) and run on loopback, so a
machine with Python and Go but no container engine gets a real API server, etcd,
controller-manager and scheduler.
"""
