"""Talking to the API server: the connection, the one applier, and the comparison that
decides whether anything needs writing."""
