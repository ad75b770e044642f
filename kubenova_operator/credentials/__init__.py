"""Credentials: kubeconfigs built from TokenRequest tokens, and their encryption."""
