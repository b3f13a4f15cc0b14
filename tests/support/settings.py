"""Settings for a test's own app: the stack's settings with one section's values changed, and the
type of the unit conftest's settings factory.

limited = settings_with(settings, "auth", login_attempts_per_ip_per_minute=3)
down = settings_with(settings, "redis", url=SecretStr("redis://127.0.0.1:9/0"))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from ehr.core.config import Settings

__all__ = ["SettingsFactory", "settings_with"]

# The unit conftest's ``unit_settings``: ``unit_settings(**overrides)`` reaches nothing real.
SettingsFactory = Callable[..., Settings]


def settings_with(settings: Settings, section: str, **values: Any) -> Settings:
    """A copy of ``settings`` whose ``section`` (``auth``, ``redis``, ...) has ``values``."""
    part = getattr(settings, section)
    assert isinstance(part, BaseModel), section
    return settings.model_copy(update={section: part.model_copy(update=values)})
