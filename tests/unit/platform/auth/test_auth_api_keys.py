"""API key format and grants (no database)."""

from __future__ import annotations

import pytest

from ehr.core.db.models import ApiKey
from ehr.core.errors import RequestValidationFailed
from ehr.platform.auth.api_keys import (
    _KEY_PATTERN,
    API_KEY_PREFIX,
    _new_key,
    _validated_grants,
    key_permissions,
    key_scopes,
    looks_like_api_key,
)


def test_key_format_prefix_and_entropy() -> None:
    prefix, key = _new_key()
    assert prefix.startswith(API_KEY_PREFIX)
    assert key.startswith(prefix + "_")
    assert len(key.removeprefix(prefix + "_")) == 43  # 256 bits, base64url (may contain "_")
    assert looks_like_api_key(key)
    assert not looks_like_api_key("eyJhbGciOiJFUzI1NiJ9.e30.sig")
    assert _new_key() != _new_key()


def test_every_generated_key_is_accepted_by_the_lookup_pattern() -> None:
    for _ in range(500):
        _, key = _new_key()
        assert _KEY_PATTERN.fullmatch(key), key


def test_permissions_are_stored_as_perm_scopes_and_read_back() -> None:
    roles, scopes = _validated_grants(
        ["billing", "billing"], ["patient:read"], ["system/Observation.rs"]
    )
    assert roles == ["billing"]
    assert scopes == ["perm:patient:read", "system/Observation.rs"]
    key = ApiKey(roles=roles, scopes=scopes)
    assert key_permissions(key) == {"patient:read"}
    assert key_scopes(key) == {"system/Observation.rs"}


@pytest.mark.parametrize(
    ("roles", "permissions", "scopes"),
    [
        (["root"], [], []),
        ([], ["patient:delete-everything"], []),
        ([], [], ["perm:patient:read"]),  # explicit permissions go through `permissions`
        ([], [], ["bad scope with spaces"]),
    ],
)
def test_unknown_grants_are_refused(
    roles: list[str], permissions: list[str], scopes: list[str]
) -> None:
    with pytest.raises(RequestValidationFailed):
        _validated_grants(roles, permissions, scopes)
