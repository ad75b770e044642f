from __future__ import annotations

from decimal import Decimal

import pytest

from kubenova_operator.resources.quantity import (
    QuantityError,
    equal_quantities,
    exceeding,
    format_quantity,
    parse_quantity,
    sum_resources,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("1Gi", Decimal(2**30)),
        ("1.5Gi", Decimal(3 * 2**29)),
        ("1k", Decimal(1000)),
        ("1e3", Decimal(1000)),
        (4, Decimal(4)),
        ("100Mi", Decimal(100 * 2**20)),
    ],
)
def test_parse(text: str | int, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("bad", ["", "1.2.3", "10 Gi", "abc", "1Gb"])
def test_parse_refuses_garbage(bad: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(bad)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.5"), "500m"),
        (Decimal(2), "2"),
        (Decimal(2**31), "2Gi"),
        (Decimal(0), "0"),
        (Decimal("1.5"), "1500m"),
        (Decimal(1000), "1000"),
    ],
)
def test_format(value: Decimal, text: str) -> None:
    assert format_quantity(value) == text
    assert parse_quantity(text) == value


def test_sum_and_exceeding() -> None:
    total = sum_resources([{"requests.cpu": "500m"}, {"requests.cpu": "1", "pods": 3}])
    assert total == {"requests.cpu": Decimal("1.5"), "pods": Decimal(3)}
    assert exceeding({"requests.cpu": "1", "limits.memory": "1Gi"}, total) == {
        "requests.cpu": (Decimal("1.5"), Decimal(1))
    }
    assert equal_quantities("1000m", "1") and not equal_quantities("1", "2")
