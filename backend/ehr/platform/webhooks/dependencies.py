"""Request dependencies of the webhook routes (overridable in tests)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from ehr.core.dependencies import SettingsDep
from ehr.platform.webhooks.settings import WebhooksSettings

__all__ = ["WebhooksSettingsDep", "get_webhooks_settings"]


def get_webhooks_settings(settings: SettingsDep) -> WebhooksSettings:
    """``EHR_WEBHOOKS__*``: the app's settings' ``webhooks`` section."""
    return settings.webhooks


WebhooksSettingsDep = Annotated[WebhooksSettings, Depends(get_webhooks_settings)]
