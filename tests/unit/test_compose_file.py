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


# --- compose and the Helm chart run the same processes -------------------------------------------

CHART = ROOT / "k8s" / "ehr-platform"
APP_SERVICES = ("backend", "worker", "hl7-listener", "migrate")
CONNECTION = ("EHR_DB__URL", "EHR_REDIS__URL", "EHR_FHIR__BASE_URL", "EHR_SECURITY__SECRET_KEY")


def _chart_text(name: str) -> str:
    return (CHART / "templates" / name).read_text(encoding="utf-8")


def _cli_knows(argv: list[str]) -> bool:
    """Whether `ehr <argv…> --help` names a real command of the CLI (no process started)."""
    from typer.testing import CliRunner

    from ehr.entrypoints.cli import app

    words = [word for word in argv if not word.startswith("-") and "{{" not in word]
    result = CliRunner().invoke(app, [*words[:2], "--help"])
    return result.exit_code == 0


def test_every_app_process_is_a_real_command_on_one_image(
    services: dict[str, dict[str, Any]],
) -> None:
    images = {services[name]["image"] for name in APP_SERVICES}
    assert images == {"ehr-backend:local"}
    for name in APP_SERVICES:
        command = services[name].get("command")
        if command and command[0] == "ehr":
            assert _cli_knows(command[1:]), f"{name} runs `{' '.join(command)}`: no such command"
        env = _environment(services[name])
        unknown = {key for key in env if key.startswith("EHR_")} - SETTING_NAMES
        assert not unknown, f"{name} sets {sorted(unknown)}: not fields of Settings"


def test_the_worker_reaches_what_the_backend_reaches(services: dict[str, dict[str, Any]]) -> None:
    backend, worker = _environment(services["backend"]), _environment(services["worker"])
    for name in CONNECTION:
        assert worker[name] == backend[name], name
    assert worker["EHR_FHIR_CHANGES__NOTIFY_URL"] == backend["EHR_FHIR_CHANGES__NOTIFY_URL"]
    port = worker["EHR_JOBS__HEALTH_PORT"]
    assert f"//worker:{port}/" in worker["EHR_FHIR_CHANGES__NOTIFY_URL"]


def test_the_chart_runs_every_long_running_compose_process() -> None:
    commands = {
        "backend": _chart_text("api.yaml"),
        "worker": _chart_text("worker.yaml"),
        "hl7-listener": _chart_text("worker.yaml"),
        "migrate": _chart_text("migrations.yaml"),
    }
    compose = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    for name, template in commands.items():
        command = compose[name].get("command")
        if command:  # the backend's comes from the image's CMD; the chart says `ehr serve`
            assert f"command: {json_list(command)}" in template, name
    assert 'command: ["ehr", "serve"' in commands["backend"]


def json_list(words: list[str]) -> str:
    return "[" + ", ".join(f'"{word}"' for word in words) + "]"


def test_the_charts_processes_are_real_commands_where_enabled() -> None:
    for template in sorted((CHART / "templates").glob("*.yaml")):
        for match in re.finditer(r"command: (\[.*\])", template.read_text()):
            argv = [w.strip(' "') for w in match.group(1).strip("[]").split(",")]
            if argv[0] != "ehr":
                continue
            assert _cli_knows(argv[1:]), f"{template.name} runs {argv}: no such command"


def test_the_chart_and_compose_pin_the_same_images(services: dict[str, dict[str, Any]]) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    hapi = values["hapi"]["image"]
    assert f"{hapi['repository']}:{hapi['tag']}" == services["hapi"]["image"]
    redis = values["redis"]["image"]
    assert f"{redis['repository']}:{redis['tag']}" == services["redis"]["image"]


def test_the_chart_sets_only_real_settings() -> None:
    names = {
        name
        for template in (CHART / "templates").glob("*")
        for name in re.findall(r"name: (EHR_[A-Z0-9_]+)", template.read_text())
    }
    assert {"EHR_DB__URL", "EHR_JOBS__CONCURRENCY", "EHR_FHIR_CHANGES__NOTIFY_URL"} <= names
    assert not names - SETTING_NAMES, sorted(names - SETTING_NAMES)
