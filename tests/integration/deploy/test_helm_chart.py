"""The Helm chart (k8s/ehr-platform) lints, renders for the default and a production-like values
file, and every rendered manifest decodes strictly into the Kubernetes API types
(k8s/validate: a small Go program on k8s.io/api); plus what matters: only the API is routed, HAPI
and Redis are reached only by the API and the worker, no Secret values are rendered, every
container runs locked down with resources and probes.

Helm comes from the Go module proxy (`go install helm.sh/helm/v4/cmd/helm`) into .stack/bin on a
machine that lacks it; the validator's modules likewise.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from support.deploy_tools import GO, ROOT, helm, run

CHART = ROOT / "k8s" / "ehr-platform"
PRODUCTION = ROOT / "k8s" / "values-production.yaml"
VALIDATOR = ROOT / "k8s" / "validate"


def render(*extra: str) -> str:
    done = run([helm(), "template", "rel", str(CHART), *extra])
    assert done.returncode == 0, done.stderr
    return done.stdout


def manifests(*extra: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(render(*extra)) if doc]


VALUES = {"default": (), "production": ("-f", str(PRODUCTION))}


@pytest.mark.parametrize("values", list(VALUES), ids=list(VALUES))
def test_the_chart_lints(values: str) -> None:
    done = run([helm(), "lint", "--strict", str(CHART), *VALUES[values]])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("values", list(VALUES), ids=list(VALUES))
def test_rendered_manifests_decode_strictly_into_the_kubernetes_types(values: str) -> None:
    done = run([GO, "run", "."], cwd=VALIDATOR, stdin=render(*VALUES[values]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 failed" in done.stdout


def test_the_validator_refuses_unknown_fields_and_kinds() -> None:
    bad = render().replace("  replicas: 1\n", "  replicass: 1\n", 1)
    assert bad != render()
    done = run([GO, "run", "."], cwd=VALIDATOR, stdin=bad)
    assert done.returncode == 1, done.stdout
    assert "unknown field" in done.stdout
    alien = "apiVersion: example.org/v1\nkind: Widget\nmetadata: {name: w}\n"
    assert run([GO, "run", "."], cwd=VALIDATOR, stdin=alien).returncode == 1


def test_wrong_values_fail_at_install() -> None:
    for setting in ("api.replicas=0", "api.workers=99", "ingress.host=Not_A_Host", "bogus=1"):
        done = run([helm(), "template", "rel", str(CHART), "--set", setting])
        assert done.returncode != 0, setting
        assert "values don't meet the specifications" in done.stderr or "schema" in done.stderr


@pytest.mark.parametrize("values", list(VALUES), ids=list(VALUES))
def test_only_the_api_is_routed_and_hapi_is_fenced(values: str) -> None:
    docs = manifests(*VALUES[values])
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    (ingress,) = [d for d in docs if d["kind"] == "Ingress"]
    backends = {
        p["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert backends == {"rel-api"}
    paths = {p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert {"/api", "/fhir", "/oauth2", "/cds-services", "/.well-known"} <= paths
    assert ingress["spec"]["tls"]
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    assert {"rel-default-deny", "rel-hapi", "rel-redis", "rel-api", "rel-worker"} <= set(policies)
    hapi_from = [
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for rule in policies["rel-hapi"]["spec"]["ingress"]
        for peer in rule["from"]
    ]
    assert sorted(hapi_from) == ["api", "worker"]
    assert ("Service", "rel-hapi") in kinds
    hapi_service = next(
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "rel-hapi"
    )
    assert hapi_service["spec"]["type"] == "ClusterIP"


@pytest.mark.parametrize("values", list(VALUES), ids=list(VALUES))
def test_no_secret_values_and_every_container_locked_down(values: str) -> None:
    docs = manifests(*VALUES[values])
    assert not [d for d in docs if d["kind"] == "Secret"]
    text = render(*VALUES[values])
    for word in ("password:", "PASSWORD=", "secret-key:"):
        assert word not in text
    workloads = [d for d in docs if d["kind"] in {"Deployment", "Job"}]
    assert {d["metadata"]["name"] for d in workloads} >= {
        "rel-api", "rel-worker", "rel-hapi", "rel-redis", "rel-migrate"
    }  # fmt: skip
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            where = f"{workload['metadata']['name']}/{container['name']}"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert {"requests", "limits"} <= set(container["resources"]), where
            if workload["kind"] == "Deployment":
                assert "livenessProbe" in container, where
                assert "readinessProbe" in container, where
            for env in container.get("env", []):
                name = env["name"]
                if any(s in name for s in ("PASSWORD", "SECRET", "DB__URL", "REDIS__URL", "KEYS")):
                    assert "valueFrom" in env, (where, name)
                    assert "value" not in env, (where, name)
    api = next(d for d in workloads if d["metadata"]["name"] == "rel-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    migrate = next(d for d in workloads if d["metadata"]["name"] == "rel-migrate")
    assert migrate["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    kinds = {d["kind"] for d in docs}
    assert {"HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds


def test_hapi_runs_our_configuration_and_the_pinned_image() -> None:
    docs = manifests()
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    source = (ROOT / "hapi-config" / "application.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(config["data"]["application.yaml"]) == yaml.safe_load(source)
    assert (CHART / "files" / "hapi-application.yaml").read_text(encoding="utf-8") == source
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    hapi = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "rel-hapi"
    )
    image = hapi["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == compose["services"]["hapi"]["image"]
    env = {e["name"] for e in hapi["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"SPRING_CONFIG_ADDITIONAL_LOCATION", "SPRING_AI_MCP_SERVER_ENABLED"} <= env


def test_the_chart_runs_the_processes_compose_runs() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    docs = manifests()
    commands = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0].get("command")
        for d in docs
        if d["kind"] in {"Deployment", "Job"}
    }
    assert commands["rel-worker"] == compose["services"]["worker"]["command"]
    assert commands["rel-migrate"] == compose["services"]["migrate"]["command"]
    assert commands["rel-api"][:2] == ["ehr", "serve"]
    worker_env = {
        e["name"]
        for d in docs
        if d["metadata"]["name"] == "rel-worker" and d["kind"] == "Deployment"
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert set(compose["services"]["worker"]["environment"]) <= worker_env
    # The HL7 v2 listener: the same command and settings; MLLP in only from the senders' CIDRs.
    assert commands["rel-hl7"] == compose["services"]["hl7-listener"]["command"]
    listener_env = {
        e["name"]
        for d in docs
        if d["metadata"]["name"] == "rel-hl7" and d["kind"] == "Deployment"
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert set(compose["services"]["hl7-listener"]["environment"]) <= listener_env
    policy = next(
        d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "rel-hl7"
    )
    mllp_in = policy["spec"]["ingress"][0]
    assert mllp_in["ports"] == [{"port": 2575, "protocol": "TCP"}]
    assert mllp_in["from"] == [{"ipBlock": {"cidr": "10.0.0.0/8"}}]


def test_the_hl7_listener_serves_tls_from_a_secret() -> None:
    docs = manifests("--set", "hl7.tls.secretName=hl7-cert", "--set", "hl7.tls.clientCa=true")
    listener = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "rel-hl7"
    )
    pod = listener["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["EHR_HL7__TLS_CERT_FILE"] == "/etc/ehr/hl7-tls/tls.crt"
    assert env["EHR_HL7__TLS_CLIENT_CA_FILE"] == "/etc/ehr/hl7-tls/ca.crt"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["hl7-tls"]["secret"]["secretName"] == "hl7-cert"


def test_an_external_redis_is_reached_by_its_range_and_never_rendered() -> None:
    external = ("--set", "redis.enabled=false", "--set", "networkPolicy.redisCidr=10.20.192.0/18")
    docs = manifests(*external)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "rel-redis") not in names
    assert ("NetworkPolicy", "rel-redis") not in names
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    for component in ("rel-api", "rel-worker"):
        to_redis = [
            rule["to"]
            for rule in policies[component]["spec"]["egress"]
            if rule.get("ports") == [{"port": 6379, "protocol": "TCP"}]
        ]
        assert to_redis == [[{"ipBlock": {"cidr": "10.20.192.0/18"}}]], component
    done = run([GO, "run", "."], cwd=VALIDATOR, stdin=render(*external))
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_external_redis_without_its_range_fails_at_install() -> None:
    done = run([helm(), "template", "rel", str(CHART), "--set", "redis.enabled=false",
                "--set", "networkPolicy.redisCidr="])  # fmt: skip
    assert done.returncode != 0
