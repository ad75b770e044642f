"""The per-replica uninstall hold's finalizer name (controllers/uninstall.py hold_of):
whatever the pod's name, a finalizer the API server accepts, and the same pod always
gets the same one (a restarted container takes its own hold back)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from kubenova_operator.controllers.uninstall import HOLD_PREFIX, hold_of

# metav1 validation of a finalizer: a qualified name, the prefix a DNS subdomain and
# the name part at most 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends.
QUALIFIED = re.compile(r"^kubenova\.io/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
POD_NAME = st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", fullmatch=True)


@given(st.one_of(POD_NAME, st.text(min_size=1, max_size=300)))
def test_every_pod_name_gives_a_valid_finalizer(pod: str) -> None:
    hold = hold_of(pod)
    assert QUALIFIED.match(hold), hold
    assert hold.startswith(HOLD_PREFIX)
    assert hold_of(pod) == hold


@given(POD_NAME, POD_NAME)
def test_replicas_hold_apart(a: str, b: str) -> None:
    if a != b:
        assert hold_of(a) != hold_of(b)


def test_a_short_pod_name_is_readable() -> None:
    assert hold_of("kubenova-operator-7d9f8-x2x9q") == (
        "kubenova.io/uninstall-kubenova-operator-7d9f8-x2x9q"
    )
