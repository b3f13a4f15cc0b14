"""What a pharmacy stocks and where (ADR 0034): locations and products.

A product is an NDC-11 package of an RxNorm concept. When the shipped RxNorm table knows the
NDC it must map to the RxCUI given (422 ``ndc_not_the_product`` otherwise). Its DEA schedule is
the operator's, or derived from its ingredients (``schedules``).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, Final, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ehr.core.db.models import PharmacyLocation, PharmacyProduct
from ehr.modules.medication_safety import RXNORM_SYSTEM
from ehr.modules.pharmacy.errors import LocationTakenError, NdcMismatchError, ProductTakenError
from ehr.modules.pharmacy.schedules import schedule_for

__all__ = [
    "NDC_SYSTEM",
    "CodeResolver",
    "list_locations",
    "list_products",
    "register_location",
    "register_product",
]

NDC_SYSTEM: Final = "http://hl7.org/fhir/sid/ndc"


class _Resolves(Protocol):
    def resolve(self, system: str, code: str) -> Any: ...


class CodeResolver:
    """What the catalogue needs of the RxNorm table (the medication-safety resolver)."""

    def __init__(self, resolver: _Resolves) -> None:
        self._resolver = resolver

    def _resolve(self, system: str, code: str) -> tuple[str, frozenset[str]] | None:
        resolution = self._resolver.resolve(system, code)
        if resolution is None:
            return None
        return str(resolution.rxcui), frozenset(resolution.ingredients)

    def rxcui_of_ndc(self, ndc11: str) -> str | None:
        found = self._resolve(NDC_SYSTEM, ndc11)
        return found[0] if found else None

    def ingredients(self, rxcui: str) -> frozenset[str]:
        found = self._resolve(RXNORM_SYSTEM, rxcui)
        return found[1] if found else frozenset()


async def register_location(
    session: AsyncSession, tenant_id: uuid.UUID, *, code: str, name: str, actor: str
) -> PharmacyLocation:
    location = PharmacyLocation(
        id=uuid.uuid4(), tenant_id=tenant_id, code=code, name=name, created_by=actor
    )
    try:
        async with session.begin_nested():
            session.add(location)
            await session.flush()
    except IntegrityError:
        raise LocationTakenError("The tenant has a location with this code") from None
    return location


async def register_product(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    resolver: CodeResolver,
    *,
    ndc11: str,
    rxcui: str,
    name: str,
    unit: str,
    divisible: bool,
    schedule: str | None,
    reorder_level: Decimal,
    actor: str,
) -> PharmacyProduct:
    """A new product; ``schedule`` None derives it from the ingredients (None when none is
    scheduled)."""
    known = resolver.rxcui_of_ndc(ndc11)
    if known is not None and known != rxcui:
        raise NdcMismatchError(
            "The RxNorm table maps this NDC to another concept",
            extra={"ndc11": ndc11, "rxcui": known},
        )
    product = PharmacyProduct(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        ndc11=ndc11,
        rxcui=rxcui,
        name=name,
        unit=unit,
        divisible=divisible,
        schedule=schedule or schedule_for(resolver.ingredients(rxcui) | {rxcui}),
        reorder_level=reorder_level,
        created_by=actor,
    )
    try:
        async with session.begin_nested():
            session.add(product)
            await session.flush()
    except IntegrityError:
        raise ProductTakenError("The tenant has a product with this NDC") from None
    return product


async def list_locations(session: AsyncSession, tenant_id: uuid.UUID) -> list[PharmacyLocation]:
    return list(
        await session.scalars(
            sa.select(PharmacyLocation)
            .where(PharmacyLocation.tenant_id == tenant_id)
            .order_by(PharmacyLocation.code)
        )
    )


async def list_products(
    session: AsyncSession, tenant_id: uuid.UUID, *, controlled: bool | None = None
) -> list[PharmacyProduct]:
    query = sa.select(PharmacyProduct).where(PharmacyProduct.tenant_id == tenant_id)
    if controlled is not None:
        column = PharmacyProduct.schedule
        query = query.where(column.is_not(None) if controlled else column.is_(None))
    return list(await session.scalars(query.order_by(PharmacyProduct.name, PharmacyProduct.ndc11)))
