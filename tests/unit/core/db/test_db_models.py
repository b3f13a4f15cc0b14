"""App tables: one schema, named constraints, schema mapped from settings."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from ehr.core.config import DatabaseSettings
from ehr.core.db.engine import create_engine
from ehr.core.db.migrate import validate_schema_name
from ehr.core.db.models import MODEL_SCHEMA, Base, IdempotencyKey


def test_every_table_lives_in_the_app_schema() -> None:
    assert Base.metadata.schema == MODEL_SCHEMA
    assert all(table.schema == MODEL_SCHEMA for table in Base.metadata.tables.values())


def test_idempotency_keys_shape() -> None:
    table = IdempotencyKey.__table__
    assert set(table.columns.keys()) == {
        "id",
        "tenant",
        "key",
        "request_fingerprint",
        "response_status",
        "response_body",
        "created_at",
        "expires_at",
    }
    unique = {c.name: tuple(col.name for col in c.columns) for c in table.constraints if c.name}
    assert unique["uq_idempotency_keys_tenant_key"] == ("tenant", "key")
    assert unique["pk_idempotency_keys"] == ("id",)
    assert {index.name for index in table.indexes} == {"ix_idempotency_keys_expires_at"}


async def test_engine_maps_the_model_schema_to_the_configured_one() -> None:
    engine = create_engine(
        DatabaseSettings(url=SecretStr("postgresql+asyncpg://u:p@127.0.0.1:9/x"), app_schema="s1")
    )
    try:
        options = engine.get_execution_options()
        assert options["schema_translate_map"] == {MODEL_SCHEMA: "s1"}
    finally:
        await engine.dispose()


@pytest.mark.parametrize("name", ["public", "pg_catalog", "Bad", "x;drop", "", "a" * 64])
def test_schema_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="invalid app schema name"):
        validate_schema_name(name)


def test_plain_schema_names_pass() -> None:
    assert validate_schema_name("ehr_app") == "ehr_app"
    assert validate_schema_name("test_migr_1a2b") == "test_migr_1a2b"
