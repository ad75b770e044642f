"""When a token must be (re-)issued (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta


def renew_at(issued: datetime, expires: datetime, renew_before_percent: int) -> datetime:
    """The moment `renew_before_percent` of the token's lifetime is left."""
    lifetime = expires - issued
    return expires - lifetime * renew_before_percent / 100


def issue_reason(
    *,
    issued: datetime | None,
    expires: datetime | None,
    generation_seen: bool,
    renew_before_percent: int,
    now: datetime,
) -> str | None:
    """Why a new token is needed now, or None.

    - "initial": none was issued yet;
    - "spec": the request changed since the token was issued (TTL, role, delivery,
      or `spec.reissue` bumped on purpose);
    - "rotation": the renewal point has passed.
    """
    if issued is None:
        return "initial"
    if not generation_seen:
        return "spec"
    if expires is not None and now >= renew_at(issued, expires, renew_before_percent):
        return "rotation"
    return None


def seconds_until(moment: datetime, now: datetime) -> float:
    return max(0.0, (moment - now) / timedelta(seconds=1))
