"""Request dependencies of the webhook routes (overridable in tests)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.platform.webhooks.settings import WebhooksSettings

__all__ = ["WebhooksSettingsDep", "get_webhooks_settings"]


def get_webhooks_settings() -> WebhooksSettings:
    """``EHR_WEBHOOKS__*`` as the environment has them."""
    return WebhooksSettings()


WebhooksSettingsDep = Annotated[WebhooksSettings, Depends(get_webhooks_settings)]
