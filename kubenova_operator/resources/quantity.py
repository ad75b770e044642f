"""resource.Quantity arithmetic, for carving project budgets out of a tenant's.

The grammar is Kubernetes' (`k8s.io/apimachinery/pkg/api/resource`): a decimal number
with an optional binary (Ki..Ei), decimal (n, u, m, k, M..E) or exponent suffix.
Values are kept as Decimal so sums of "500m" and "1.5" are exact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal

_SUFFIX = {
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE](?P<exp>[+-]?\d+))?$"
)


class QuantityError(ValueError):
    pass


def parse_quantity(value: str | int | float | Decimal) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.match(value.strip())
    if not match:
        raise QuantityError(f"{value!r} is not a quantity (e.g. 500m, 2, 1.5Gi)")
    number = Decimal(match["num"])
    if match["exp"] is not None:
        return number.scaleb(int(match["exp"]))
    return number * _SUFFIX[match["suffix"] or ""]


def format_quantity(value: Decimal) -> str:
    """A canonical, readable form: whole numbers plain or with a binary suffix when
    exact (memory), fractions in milli-units (CPU)."""
    if value == value.to_integral_value():
        whole = int(value)
        for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
            unit = int(_SUFFIX[suffix])
            if whole and whole % unit == 0 and abs(whole) >= unit:
                return f"{whole // unit}{suffix}"
        return str(whole)
    milli = value * 1000
    if milli == milli.to_integral_value():
        return f"{int(milli)}m"
    return f"{int((value * 10**9).to_integral_value())}n"


def sum_resources(items: Iterable[Mapping[str, str | int]]) -> dict[str, Decimal]:
    total: dict[str, Decimal] = {}
    for item in items:
        for key, value in item.items():
            total[key] = total.get(key, Decimal(0)) + parse_quantity(value)
    return total


def format_resources(values: Mapping[str, Decimal]) -> dict[str, str]:
    return {key: format_quantity(values[key]) for key in sorted(values)}


def exceeding(
    budget: Mapping[str, str | int], claims: Mapping[str, Decimal]
) -> dict[str, tuple[Decimal, Decimal]]:
    """The budget keys that `claims` go over: key -> (claimed, budget). Keys the budget
    does not limit are unlimited."""
    over: dict[str, tuple[Decimal, Decimal]] = {}
    for key, limit in canonical_hard(budget).items():
        have = parse_quantity(limit)
        want = claims.get(key, Decimal(0))
        if want > have:
            over[key] = (want, have)
    return over


# ResourceQuota treats these as the same resource as their `requests.` form.
_ALIASES = {
    "cpu": "requests.cpu",
    "memory": "requests.memory",
    "ephemeral-storage": "requests.ephemeral-storage",
}


def canonical_resource(key: str) -> str:
    """The name ResourceQuota means by `key` (`cpu` is `requests.cpu`)."""
    return _ALIASES.get(key, key)


def canonical_hard(hard: Mapping[str, str | int]) -> dict[str, str | int]:
    """A quota's hard limits under canonical names (admission refuses a map naming both
    an alias and its canonical form)."""
    return {canonical_resource(key): value for key, value in hard.items()}


def invalid_quantities(hard: Mapping[str, str | int]) -> list[str]:
    """What in `hard` cannot be a budget: unreadable or negative quantities. The CRD
    refuses these at admission; the budget arithmetic refuses them again, because a
    negative claim would hand its amount to the other namespaces."""
    problems = []
    for key, value in sorted(hard.items()):
        try:
            if parse_quantity(value) < 0:
                problems.append(f"{key}: {value} is negative")
        except QuantityError:
            problems.append(f"{key}: {value!r} is not a quantity")
    return problems


def equal_quantities(a: str | int, b: str | int) -> bool:
    try:
        return parse_quantity(a) == parse_quantity(b)
    except QuantityError:
        return str(a) == str(b)
