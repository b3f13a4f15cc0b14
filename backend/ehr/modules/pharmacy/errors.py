"""The pharmacy module's refusals: each a stable ``code`` in the problem document."""

from __future__ import annotations

from ehr.core.errors import (
    ConflictError,
    NotFoundError,
    RequestValidationFailed,
)

__all__ = [
    "InsufficientStockError",
    "LocationNotFoundError",
    "LocationTakenError",
    "LotExpiredError",
    "LotNotFoundError",
    "LotRecalledError",
    "LotTakenError",
    "NdcMismatchError",
    "ProductNotFoundError",
    "ProductTakenError",
    "QuantityNotAllowedError",
    "WitnessInvalidError",
    "WitnessRequiredError",
]


class LocationNotFoundError(NotFoundError):
    code = "pharmacy_location_not_found"
    title = "No such pharmacy location"


class ProductNotFoundError(NotFoundError):
    code = "pharmacy_product_not_found"
    title = "No such pharmacy product"


class LotNotFoundError(NotFoundError):
    code = "pharmacy_lot_not_found"
    title = "No such lot"


class LocationTakenError(ConflictError):
    code = "pharmacy_location_exists"
    title = "The tenant has a location with this code"


class ProductTakenError(ConflictError):
    code = "pharmacy_product_exists"
    title = "The tenant has a product with this NDC"


class LotTakenError(ConflictError):
    code = "pharmacy_lot_conflict"
    title = "This lot number is known with another expiry"


class InsufficientStockError(ConflictError):
    code = "insufficient_stock"
    title = "Not enough stock"


class LotExpiredError(ConflictError):
    code = "lot_expired"
    title = "The lot has expired"


class LotRecalledError(ConflictError):
    code = "lot_recalled"
    title = "The lot is recalled"


class QuantityNotAllowedError(RequestValidationFailed):
    code = "quantity_not_allowed"
    title = "This quantity is not allowed for the product"


class NdcMismatchError(RequestValidationFailed):
    code = "ndc_not_the_product"
    title = "The NDC is not the RxNorm product given"


class WitnessRequiredError(RequestValidationFailed):
    code = "witness_required"
    title = "Wasting a controlled substance needs a witness"


class WitnessInvalidError(RequestValidationFailed):
    code = "witness_invalid"
    title = "The witness could not be accepted"
