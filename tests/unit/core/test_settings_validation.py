"""Settings refuse development secrets outside development; failures are one line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from ehr.core.config import (
    AuthSettings,
    DatabaseSettings,
    Environment,
    SecuritySettings,
    Settings,
    SettingsError,
    describe_settings_error,
    get_settings,
)
from ehr.entrypoints.api import create_app
from ehr.entrypoints.cli import app as cli


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EHR_ENV", "EHR_SECURITY__SECRET_KEY", "EHR_API__PORT"):
        monkeypatch.delenv(name, raising=False)


REAL_SECRET = SecuritySettings(secret_key=SecretStr("a-real-secret-from-the-vault"))
REAL_DB = DatabaseSettings(url=SecretStr("postgresql+asyncpg://ehr:s3cret@db.internal:5432/ehr"))
REAL_AUTH = AuthSettings(
    encryption_keys=[SecretStr("cmVhbC1rZXktZnJvbS10aGUtdmF1bHQtMzItYnl0ZXM=")]
)


@pytest.mark.parametrize("env", [Environment.TEST, Environment.PRODUCTION])
def test_default_secret_key_is_refused_outside_development(env: Environment) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(env=env, db=REAL_DB)
    message = describe_settings_error(caught.value)
    assert message.startswith("EHR_SECURITY__SECRET_KEY")
    assert "\n" not in message


def test_default_database_password_is_refused_outside_development() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(env=Environment.PRODUCTION, security=REAL_SECRET)
    assert describe_settings_error(caught.value).startswith("EHR_DB__URL")


def test_default_encryption_key_is_refused_outside_development() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(env=Environment.PRODUCTION, security=REAL_SECRET, db=REAL_DB)
    assert describe_settings_error(caught.value).startswith("EHR_AUTH__ENCRYPTION_KEYS")


def test_real_secrets_are_accepted_in_production() -> None:
    settings = Settings(
        env=Environment.PRODUCTION, security=REAL_SECRET, db=REAL_DB, auth=REAL_AUTH
    )
    assert settings.env is Environment.PRODUCTION


def test_development_accepts_the_defaults() -> None:
    assert Settings(env=Environment.DEVELOPMENT).security.secret_key.get_secret_value()


def test_field_errors_name_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EHR_API__PORT", "not-a-port")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert describe_settings_error(caught.value).startswith("EHR_API__PORT: ")


@pytest.fixture
def production_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``EHR_ENV=production`` with the development defaults; the settings cache is cleared around
    the test so that the environment is read, and not kept for the next tests."""
    monkeypatch.setenv("EHR_ENV", "production")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("production_environment")
def test_create_app_exits_with_one_line_when_the_environment_is_invalid() -> None:
    with pytest.raises(SettingsError) as caught:
        create_app()
    assert isinstance(caught.value, SystemExit)
    message = str(caught.value.code)
    assert "EHR_SECURITY__SECRET_KEY" in message
    assert "\n" not in message
    assert "Traceback" not in message


@pytest.mark.usefixtures("production_environment")
def test_cli_check_config_reports_one_line_and_exit_status_2() -> None:
    result = CliRunner().invoke(cli, ["check-config"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "EHR_SECURITY__SECRET_KEY" in lines[0]


def test_cli_check_config_redacts_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from ehr.core.config import DEV_SECRET_KEY, get_settings

    monkeypatch.setenv("EHR_ENV", "development")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["check-config"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0
    assert DEV_SECRET_KEY not in result.output
    assert '"env": "development"' in result.output


def test_cli_mounts_the_stack_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "migrate", "seed", "check-config", "stack"):
        assert command in result.output
