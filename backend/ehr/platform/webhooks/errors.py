"""The webhook API's refusals (problem+json through the one error hierarchy)."""

from __future__ import annotations

from ehr.core.errors import ConflictError, NotFoundError

__all__ = ["DeliveryNotFoundError", "DeliveryNotReplayableError", "EndpointNotFoundError"]


class EndpointNotFoundError(NotFoundError):
    """No endpoint with this id for the caller's tenant (another tenant's is not found)."""

    code = "webhook_endpoint_not_found"
    title = "Webhook endpoint not found"


class DeliveryNotFoundError(NotFoundError):
    code = "webhook_delivery_not_found"
    title = "Webhook delivery not found"


class DeliveryNotReplayableError(ConflictError):
    """A delivery still under way (pending, retrying) or to a disabled endpoint."""

    code = "webhook_delivery_not_replayable"
    title = "Webhook delivery cannot be replayed now"
