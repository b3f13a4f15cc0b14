"""Orders (CPOE): lab, imaging, referral and medication orders with a signing lifecycle
(ADR 0020).

The public surface (other modules and the entrypoints import only this):

``OrderCreate``        the order document: a discriminated union by ``kind`` (``lab`` |
                       ``imaging`` | ``referral`` | ``medication``), with the four document types
``build_draft``        ``build_draft(patient_id, order, requester) -> dict``: the draft
                       ServiceRequest / MedicationRequest (status draft, intent order) of a
                       document; pure, raises the 422 code refusals (order sets build on it)
``check_order``        the same checks without building
``router``             the routes under ``/api/patients/{patient_id}/orders``
``policy_router``      ``/api/order-policy`` (tenant:admin)
``SIGN_OVERRIDES``     the Prometheus counter ``ehr_order_sign_overrides_total{rule}``
"""

from ehr.modules.orders.drafts import build_draft, check_order
from ehr.modules.orders.policy_router import policy_router
from ehr.modules.orders.router import router
from ehr.modules.orders.schemas import (
    ImagingOrderCreate,
    LabOrderCreate,
    MedicationOrderCreate,
    OrderCreate,
    ReferralOrderCreate,
)
from ehr.modules.orders.signing import SIGN_OVERRIDES

__all__ = [
    "SIGN_OVERRIDES",
    "ImagingOrderCreate",
    "LabOrderCreate",
    "MedicationOrderCreate",
    "OrderCreate",
    "ReferralOrderCreate",
    "build_draft",
    "check_order",
    "policy_router",
    "router",
]
