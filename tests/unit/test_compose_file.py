"""docker-compose.yml stays in step with the launcher, the settings and our security rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from ehr.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
POM = ROOT / "hapi-config" / "launcher" / "pom.xml"
ENV_EXAMPLE = ROOT / ".env.example"

# Words that mark a variable as a secret; its value must come from the environment.
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "AUTH", "KEY")
VARIABLE = re.compile(r"\$\{[A-Z0-9_]+(:?[?-][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def _setting_env_names(model: type[BaseModel], prefix: str) -> set[str]:
    """Every environment name a Settings field answers to (nested with "__")."""
    names: set[str] = set()
    for field_name, field in model.model_fields.items():
        name = f"{prefix}{field_name.upper()}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.add(name)  # a whole sub-model as JSON is valid too
            names |= _setting_env_names(annotation, f"{name}__")
        else:
            names.add(name)
    return names


def _leaf_setting_env_names(model: type[BaseModel], prefix: str) -> set[str]:
    names: set[str] = set()
    for field_name, field in model.model_fields.items():
        name = f"{prefix}{field_name.upper()}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _leaf_setting_env_names(annotation, f"{name}__")
        else:
            names.add(name)
    return names


SETTING_NAMES = _setting_env_names(Settings, "EHR_")


def test_hapi_image_matches_the_launcher_version(services: dict[str, dict[str, Any]]) -> None:
    pom_version = re.search(r"<hapi\.version>\s*([^<\s]+)\s*</hapi\.version>", POM.read_text())
    assert pom_version is not None, "no <hapi.version> in the launcher pom"
    image = services["hapi"]["image"]
    match = re.fullmatch(r"hapiproject/hapi:v(\d+\.\d+\.\d+)-\d+", image)
    assert match, f"unexpected HAPI image {image!r}"
    assert match.group(1) == pom_version.group(1)


def test_hapi_mcp_endpoint_is_disabled(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services["hapi"])
    assert env.get("SPRING_AI_MCP_SERVER_ENABLED") == "false"
    app_yaml = yaml.safe_load((ROOT / "hapi-config" / "application.yaml").read_text())
    assert app_yaml["spring"]["ai"]["mcp"]["server"]["enabled"] is False


def test_hapi_reads_our_application_yaml(services: dict[str, dict[str, Any]]) -> None:
    hapi = services["hapi"]
    mounts = {}
    for volume in hapi.get("volumes", []):
        source, target, *options = volume.split(":")
        mounts[target] = (source, options)
    config_location = _environment(hapi)["SPRING_CONFIG_ADDITIONAL_LOCATION"]
    target = config_location.removeprefix("file:")
    assert target in mounts, f"{config_location} is not a mounted file"
    source, options = mounts[target]
    assert source == "./hapi-config/application.yaml"
    assert "ro" in options


def test_hapi_is_not_published(services: dict[str, dict[str, Any]]) -> None:
    assert not services["hapi"].get("ports"), "the backend is the door; do not publish HAPI"


def test_backend_sets_only_real_settings(services: dict[str, dict[str, Any]]) -> None:
    for name in ("backend", "migrate"):
        ehr_vars = {key for key in _environment(services[name]) if key.startswith("EHR_")}
        assert ehr_vars, f"{name} sets no EHR_* settings"
        unknown = ehr_vars - SETTING_NAMES
        assert not unknown, f"{name} sets {sorted(unknown)}: not fields of ehr.core.config.Settings"


def test_backend_points_at_the_compose_services(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services["backend"])
    assert env["EHR_ENV"] == "production"
    assert "@postgres:5432/ehr" in env["EHR_DB__URL"]
    assert "@redis:6379/" in env["EHR_REDIS__URL"]
    assert env["EHR_FHIR__BASE_URL"] == "http://hapi:8080/fhir"
    build = services["backend"]["build"]
    assert build == {"context": ".", "dockerfile": "backend/Dockerfile"}


def test_every_long_running_service_has_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    one_shot = {
        dependency
        for service in services.values()
        for dependency, rule in (service.get("depends_on") or {}).items()
        if rule.get("condition") == "service_completed_successfully"
    }
    for name, service in services.items():
        if name in one_shot:
            continue
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert check.get("test"), f"{name} has an empty healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"


def test_dependencies_wait_for_health(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions, not a list"
        for dependency, rule in depends_on.items():
            assert dependency in services
            expected = (
                "service_completed_successfully"
                if "healthcheck" not in services[dependency]
                else "service_healthy"
            )
            assert rule.get("condition") == expected, f"{name} -> {dependency}"
    backend_needs = set(services["backend"]["depends_on"])
    assert {"postgres", "redis", "hapi", "migrate"} <= backend_needs


def _secret_like(key: str) -> bool:
    return any(word in key.upper() for word in SECRET_WORDS) and not key.endswith("_FILE")


def test_no_literal_secrets(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for key, value in _environment(service).items():
            if _secret_like(key):
                assert VARIABLE.fullmatch(value), f"{name}.{key} must come from the environment"
                assert ":?" in value, f"{name}.{key}: use ${{VAR:?set it in .env}} (no default)"
            # Credentials inside URLs: user:password@host — the password must be a variable.
            for password in re.findall(r"//[^:/@]+:([^@]*)@", value):
                assert VARIABLE.fullmatch(password), f"{name}.{key} has a literal password"
    # The only values allowed in .env.example for secrets are empty ones.
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            if _secret_like(key):
                assert value.strip() == "", f".env.example ships a value for {key}"


def test_env_example_documents_every_setting() -> None:
    text = ENV_EXAMPLE.read_text()
    missing = sorted(
        name
        for name in _leaf_setting_env_names(Settings, "EHR_")
        if not re.search(rf"^#?\s*{name}=", text, re.MULTILINE)
    )
    assert not missing, f".env.example does not mention {missing}"
