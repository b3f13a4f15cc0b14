"""The pharmacy module's pure parts: DEA schedules from the cited table, quantity rules, and
the ledger's row hash (ADR 0034)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ehr.core.db.models import PharmacyLedgerEntry, PharmacyProduct
from ehr.core.errors import RequestValidationFailed
from ehr.modules.pharmacy import schedule_for
from ehr.modules.pharmacy.inventory import check_quantity
from ehr.modules.pharmacy.ledger import GENESIS_HASH, entry_hash
from ehr.modules.pharmacy.schedules import SCHEDULES, scheduled_ingredients

OXYCODONE, ACETAMINOPHEN, ALPRAZOLAM, PREGABALIN, BUPRENORPHINE = (
    "7804",
    "161",
    "596",
    "187832",
    "1819",
)


def test_the_table_names_each_schedule_and_cites_nothing_unknown() -> None:
    table = scheduled_ingredients()
    assert set(table.values()) == set(SCHEDULES)
    assert table[OXYCODONE] == "CII"
    assert table[BUPRENORPHINE] == "CIII"
    assert table[ALPRAZOLAM] == "CIV"
    assert table[PREGABALIN] == "CV"
    assert ACETAMINOPHEN not in table


@pytest.mark.parametrize(
    ("ingredients", "schedule"),
    [
        ({OXYCODONE, ACETAMINOPHEN}, "CII"),  # the strictest ingredient decides
        ({ALPRAZOLAM, PREGABALIN}, "CIV"),
        ({PREGABALIN}, "CV"),
        ({ACETAMINOPHEN}, None),
        (set(), None),
    ],
)
def test_a_products_schedule_is_its_strictest_ingredients(
    ingredients: set[str], schedule: str | None
) -> None:
    assert schedule_for(ingredients) == schedule


def _product(*, divisible: bool) -> PharmacyProduct:
    return PharmacyProduct(unit="mL" if divisible else "{tbl}", divisible=divisible)


@pytest.mark.parametrize(
    ("divisible", "quantity"),
    [
        (False, Decimal("0.5")),  # half a tablet does not move as stock
        (False, Decimal(0)),
        (True, Decimal("-1")),
        (True, Decimal("0.0005")),  # below the ledger's scale
    ],
)
def test_quantities_a_product_cannot_move_are_refused(divisible: bool, quantity: Decimal) -> None:
    with pytest.raises(RequestValidationFailed) as refused:
        check_quantity(_product(divisible=divisible), quantity)
    assert refused.value.code == "quantity_not_allowed"


def test_quantities_a_product_can_move() -> None:
    check_quantity(_product(divisible=False), Decimal(30))
    check_quantity(_product(divisible=True), Decimal("2.5"))
    check_quantity(_product(divisible=False), Decimal(0), allow_zero=True)  # a count of nothing


def _entry(**changes: object) -> PharmacyLedgerEntry:
    fields: dict[str, object] = {
        "id": uuid.UUID(int=1),
        "tenant_id": uuid.UUID(int=2),
        "seq": 1,
        "kind": "receive",
        "location_id": uuid.UUID(int=3),
        "product_id": uuid.UUID(int=4),
        "lot_id": uuid.UUID(int=5),
        "quantity": Decimal(10),
        "balance_after": Decimal(10),
        "counted": None,
        "actor": "user:x",
        "witness": None,
        "reason": None,
        "reference": None,
        "occurred_at": datetime(2026, 12, 8, 3, 0, 0, 123456, tzinfo=UTC),
    }
    fields.update(changes)
    return PharmacyLedgerEntry(**fields)


def test_the_row_hash_is_stable_across_the_columns_scale() -> None:
    written = entry_hash(_entry(), GENESIS_HASH)
    # As PostgreSQL returns the row: numeric(14,3) with trailing zeros.
    read_back = entry_hash(
        _entry(quantity=Decimal("10.000"), balance_after=Decimal("10.000")), GENESIS_HASH
    )
    assert written == read_back
    assert len(written) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": Decimal(9)},
        {"balance_after": Decimal(11)},
        {"seq": 2},
        {"witness": "user:y"},
        {"kind": "waste"},
        {"occurred_at": datetime(2026, 12, 8, 3, 0, 0, 123457, tzinfo=UTC)},
    ],
)
def test_any_change_to_a_hashed_field_changes_the_hash(change: dict[str, object]) -> None:
    assert entry_hash(_entry(**change), GENESIS_HASH) != entry_hash(_entry(), GENESIS_HASH)
    assert entry_hash(_entry(), "f" * 64) != entry_hash(_entry(), GENESIS_HASH)
