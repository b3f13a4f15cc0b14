"""terraform/ (AWS): formatted (`fmt -check` by Terraform or OpenTofu), consistent offline
(terraform/validate: every reference, module input and output, provider, variable and example
tfvars checked with HashiCorp's HCL parser), and what the configuration promises (databases and
Redis private, encrypted, TLS-only, backed up, protected from deletion; Redis `noeviction`; the
cluster's Secrets encrypted and its endpoint private; the chart installed from k8s/ with its
Secret composed from Secrets Manager, never a secret value in the code).

What this machine cannot check: `terraform validate` and `plan` need the providers (hashicorp/aws,
helm, random), which come only from registry.terraform.io; the validator's failure cases below
prove it is not a check that cannot fail (terraform/README.md, "What is checked where").
"""

from __future__ import annotations

import json
import re
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.deploy_tools import ROOT, go_tool, helm, run, terraform_cli

TERRAFORM = ROOT / "terraform"
EXAMPLES = sorted((TERRAFORM / "examples").glob("*.tfvars"))
SECRETS_CHART = TERRAFORM / "charts" / "ehr-secrets"
PLATFORM_CHART = ROOT / "k8s" / "ehr-platform"


def validator() -> str:
    return go_tool(TERRAFORM / "validate", "terraform-validate")


def validate(directory: Path, *var_files: Path) -> tuple[int, str]:
    args = [validator()]
    for path in var_files:
        args += ["-vars", str(path)]
    done = run([*args, str(directory)])
    return done.returncode, done.stderr


@cache
def config() -> dict[str, dict[str, Any]]:
    done = run([validator(), "-dump", str(TERRAFORM)])
    assert done.returncode == 0, done.stderr
    parsed: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return parsed


def attrs(module: str, address: str) -> dict[str, Any]:
    found: dict[str, Any] = config()[module][address]["attributes"]
    return found


def blocks(module: str, address: str, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = config()[module][address]["blocks"].get(kind, [])
    return found


def expr(value: Any) -> str:
    """The source text of a non-constant attribute."""
    assert isinstance(value, dict), value
    assert "expr" in value, value
    text: str = value["expr"]
    return text


def default_of(module: str, name: str) -> Any:
    return attrs(module, f"variable.{name}")["default"]


# --- the tools' checks ----------------------------------------------------------------------


def test_terraform_files_are_formatted() -> None:
    done = run([terraform_cli(), "fmt", "-recursive", "-check", "-diff", str(TERRAFORM)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_format_check_fails_on_a_misformatted_file(tmp_path: Path) -> None:
    copy = tmp_path / "main.tf"
    copy.write_text('resource "aws_s3_bucket" "x" {\nbucket="a"\n    force_destroy = false\n}\n')
    done = run([terraform_cli(), "fmt", "-check", str(tmp_path)])
    assert done.returncode != 0
    assert "main.tf" in done.stdout


def test_the_configuration_and_the_examples_validate_offline() -> None:
    assert EXAMPLES, "no example tfvars"
    code, output = validate(TERRAFORM, *EXAMPLES)
    assert code == 0, output
    assert f"{len(EXAMPLES)} var file(s)" in output


BREAKAGES = {
    "undeclared variable": (
        "modules/database/main.tf", "var.instance_class", "var.instance_klass",
        "var.instance_klass is not declared",
    ),
    "unknown module output": (
        "main.tf", "module.redis.primary_endpoint", "module.redis.primary_address",
        'has no output "primary_address"',
    ),
    "required module input missing": (
        "main.tf",
        '  kms_key_arn              = module.secrets.kms_key_arn\n}\n\nmodule "platform"',
        '}\n\nmodule "platform"',
        'required variable "kms_key_arn"',
    ),
    "input the module does not declare": (
        "main.tf", "  zone_count              = var.zone_count\n",
        "  zone_count              = var.zone_count\n  zones = 3\n", 'declares no variable "zones"',
    ),
    "provider not required": (
        "modules/secrets/main.tf",
        'resource "random_bytes"',
        'resource "tls_private_key" "k" {}\n\nresource "random_bytes"',
        "not in the root's required_providers",
    ),
    "unknown resource": (
        "modules/network/main.tf", "aws_internet_gateway.this.id", "aws_internet_gateway.that.id",
        "resource aws_internet_gateway.that is not declared",
    ),
    "unused variable": (
        "modules/redis/variables.tf", 'variable "node_type" {',
        'variable "spare" {\n  type        = string\n  description = "x"\n}\n\n'
        'variable "node_type" {',
        'variable "spare" is declared and not used',
    ),
    "count outside count": (
        "modules/cluster/main.tf",
        "cluster_name  = aws_eks_cluster.this.name\n  principal_arn = each.value\n  type",
        "cluster_name  = aws_eks_cluster.this.name\n  principal_arn = count.index\n  type",
        "count.index outside a block with count",
    ),
    "syntax error": ("versions.tf", "required_version", "required_version = = ", "versions.tf"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BREAKAGES), ids=list(BREAKAGES))
def test_the_validator_fails_on_a_broken_configuration(case: str, tmp_path: Path) -> None:
    relative, old, new, message = BREAKAGES[case]
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns("validate", ".terraform*"))
    target = copy / relative
    text = target.read_text(encoding="utf-8")
    assert old in text, (case, old)
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    code, output = validate(copy)
    assert code == 1, (case, output)
    assert message in output, (case, output)


def test_the_validator_fails_on_a_wrong_example(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.tfvars"
    unknown.write_text((TERRAFORM / "examples" / "production.tfvars").read_text() + "nodes = 3\n")
    code, output = validate(TERRAFORM, unknown)
    assert code == 1
    assert 'sets "nodes", which the root module does not declare' in output
    missing = tmp_path / "missing.tfvars"
    missing.write_text('name = "ehr-x"\n')
    code, output = validate(TERRAFORM, missing)
    assert code == 1
    assert 'does not set required variable "image_tag"' in output


# --- what the configuration promises --------------------------------------------------------


def test_the_databases_are_private_encrypted_backed_up_and_protected() -> None:
    db = attrs("modules/database", "resource.aws_db_instance.this")
    assert db["publicly_accessible"] is False
    assert db["storage_encrypted"] is True
    assert expr(db["kms_key_id"]) == "var.kms_key_arn"
    assert db["manage_master_user_password"] is True  # RDS keeps and rotates it, not our state
    assert "password" not in db
    assert db["skip_final_snapshot"] is False
    assert db["delete_automated_backups"] is False
    assert expr(db["deletion_protection"]) == "var.deletion_protection"
    assert expr(db["backup_retention_period"]) == "var.backup_retention_days"
    assert db["performance_insights_enabled"] is True
    assert expr(db["performance_insights_kms_key_id"]) == "var.kms_key_arn"
    assert default_of(".", "deletion_protection") is True
    assert default_of(".", "multi_az") is True
    assert default_of(".", "backup_retention_days") >= 7
    (validation,) = blocks("modules/database", "variable.backup_retention_days", "validation")
    assert ">= 7" in expr(validation["attributes"]["condition"])
    parameters = {
        p["attributes"]["name"]: p["attributes"]["value"]
        for p in blocks("modules/database", "resource.aws_db_parameter_group.this", "parameter")
    }
    assert parameters["rds.force_ssl"] == "1"
    rule = attrs("modules/database", "resource.aws_vpc_security_group_ingress_rule.from_cluster")
    assert expr(rule["referenced_security_group_id"]) == "var.client_security_group_id"
    assert "cidr_ipv4" not in rule
    for call in ("module.app_database", "module.hapi_database"):
        given = attrs(".", call)
        assert expr(given["subnet_ids"]) == "module.network.database_subnet_ids"
        assert expr(given["client_security_group_id"]) == "module.cluster.node_security_group_id"


def test_the_database_tier_has_no_route_out_and_no_subnet_gives_public_addresses() -> None:
    network = config()["modules/network"]
    for tier in ("public", "private", "database"):
        subnet = network[f"resource.aws_subnet.{tier}"]["attributes"]
        assert subnet["map_public_ip_on_launch"] is False
    routes = [key for key in network if key.startswith("resource.aws_route.")]
    tables = {expr(network[key]["attributes"]["route_table_id"]) for key in routes}
    assert not any("database" in table for table in tables), tables
    assert "resource.aws_flow_log.this" in network
    assert network["resource.aws_default_security_group.this"]["blocks"] == {}


def test_redis_never_evicts_and_speaks_tls_with_auth() -> None:
    group = attrs("modules/redis", "resource.aws_elasticache_replication_group.this")
    assert group["transit_encryption_enabled"] is True
    assert group["transit_encryption_mode"] == "required"
    assert group["at_rest_encryption_enabled"] is True
    assert expr(group["auth_token"]) == "var.auth_token"
    assert group["automatic_failover_enabled"] is True
    assert group["multi_az_enabled"] is True
    group_parameters = "resource.aws_elasticache_parameter_group.this"
    (policy,) = blocks("modules/redis", group_parameters, "parameter")
    assert policy["attributes"] == {"name": "maxmemory-policy", "value": "noeviction"}
    assert attrs("modules/redis", "variable.auth_token")["sensitive"] is True


def test_the_cluster_encrypts_secrets_keeps_an_audit_log_and_a_private_endpoint() -> None:
    cluster = config()["modules/cluster"]["resource.aws_eks_cluster.this"]
    (vpc,) = cluster["blocks"]["vpc_config"]
    assert vpc["attributes"]["endpoint_private_access"] is True
    public = expr(vpc["attributes"]["endpoint_public_access"])
    assert public == "length(var.public_access_cidrs) > 0"
    assert default_of(".", "cluster_public_access_cidrs") == []
    (encryption,) = cluster["blocks"]["encryption_config"]
    assert encryption["attributes"]["resources"] == ["secrets"]
    assert "audit" in cluster["attributes"]["enabled_cluster_log_types"]
    (access,) = cluster["blocks"]["access_config"]
    assert access["attributes"]["authentication_mode"] == "API"
    assert access["attributes"]["bootstrap_cluster_creator_admin_permissions"] is False
    assert expr(attrs(".", "module.cluster")["subnet_ids"]) == "module.network.private_subnet_ids"


def test_the_kms_key_rotates_and_the_state_is_remote_encrypted_and_locked() -> None:
    key = attrs("modules/secrets", "resource.aws_kms_key.this")
    assert key["enable_key_rotation"] is True
    (terraform,) = [v for k, v in config()["."].items() if k == "terraform"]
    assert "backend" in terraform["blocks"]
    backend = (TERRAFORM / "examples" / "backend.hcl.example").read_text(encoding="utf-8")
    assert re.search(r"^use_lockfile\s*=\s*true$", backend, re.M)
    assert re.search(r"^encrypt\s*=\s*true$", backend, re.M)


def test_the_chart_from_this_repository_is_installed_with_a_managed_redis() -> None:
    call = attrs(".", "module.platform")
    assert expr(call["chart_path"]) == '"${local.repository_root}/k8s/ehr-platform"'
    assert (TERRAFORM / ".." / "k8s" / "ehr-platform" / "Chart.yaml").is_file()
    for path in default_of(".", "chart_values_files"):
        assert (ROOT / path).is_file(), path
    release = attrs("modules/platform", "resource.helm_release.platform")
    assert expr(release["chart"]) == "var.chart_path"
    values = expr(release["values"])
    assert re.search(r"redis\s*=\s*\{\s*enabled\s*=\s*false\s*\}", values)
    assert re.search(r"redisCidr\s*=\s*var\.database_cidr", values)
    assert re.search(r"existingSecret\s*=\s*local\.platform_secret_name", values)


def _secret_key_refs(manifests: list[dict[str, Any]]) -> set[str]:
    keys: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "secretKeyRef" in node:
                keys.add(node["secretKeyRef"]["key"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(manifests)
    return keys


def test_the_synced_secret_has_every_key_the_chart_reads_and_tls_urls() -> None:
    release = expr(attrs("modules/platform", "resource.helm_release.platform_secrets")["values"])
    data = dict(re.findall(r'^\s*"([a-z-]+)"\s*=\s*"(.*)"$', release, re.M))
    chart = run([helm(), "template", "rel", str(PLATFORM_CHART)])
    assert chart.returncode == 0, chart.stderr
    read = _secret_key_refs([d for d in yaml.safe_load_all(chart.stdout) if d])
    assert read <= set(data), read - set(data)
    assert data["db-url"].endswith("?ssl=require")
    assert data["redis-url"].startswith("rediss://")
    assert data["hapi-db-url"].endswith("?sslmode=require")
    fields = set(re.findall(r"\{\{ \.(\w+)", " ".join(data.values())))
    rendered = run([helm(), "template", "s", str(SECRETS_CHART)])
    assert rendered.returncode == 0, rendered.stderr
    docs = {d["kind"]: d for d in yaml.safe_load_all(rendered.stdout) if d}
    assert set(docs) == {"SecretStore", "ExternalSecret"}
    synced = {item["secretKey"] for item in docs["ExternalSecret"]["spec"]["data"]}
    assert fields <= synced, fields - synced
    assert (
        docs["ExternalSecret"]["spec"]["secretStoreRef"]["name"]
        == (docs["SecretStore"]["metadata"]["name"])
    )


def test_the_operator_may_read_only_this_platforms_secrets() -> None:
    role_policy = attrs("modules/platform", "resource.aws_iam_role_policy.external_secrets")
    policy = expr(role_policy["policy"])
    assert "local.readable_secret_arns" in policy
    assert '"*"' not in policy
    role = attrs("modules/platform", "resource.aws_iam_role.external_secrets")
    trust = expr(role["assume_role_policy"])
    assert ":sub" in trust
    assert "system:serviceaccount:" in trust


SECRET_NAMES = re.compile(r"(password|secret_string|auth_token|secret_key|token)$")


def test_no_secret_value_is_written_in_the_configuration() -> None:
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict) and "attributes" in node:
            for name, value in node["attributes"].items():
                if SECRET_NAMES.search(name):
                    assert not isinstance(value, str), f"{where}.{name} is a literal"
            for kind, inner in node["blocks"].items():
                for block in inner:
                    walk(block, f"{where}.{kind}")

    for module, items in config().items():
        for address, body in items.items():
            walk(body, f"{module}:{address}")
    for example in EXAMPLES:
        text = example.read_text(encoding="utf-8")
        assert not re.search(r"(password|token|secret)\s*=", text, re.I), example


AWS_DESCRIPTION = re.compile(r"^[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*$")


def test_security_group_descriptions_use_only_what_aws_accepts() -> None:
    groups = [
        (module, body["attributes"]["description"])
        for module, items in config().items()
        for address, body in items.items()
        if address.startswith("resource.aws_security_group.")
    ]
    assert groups
    for module, description in groups:
        text = description if isinstance(description, str) else expr(description)
        assert AWS_DESCRIPTION.match(text.strip('"')), (module, text)


def test_network_policies_are_enforced_and_logs_carry_no_parameters() -> None:
    addon = attrs("modules/cluster", "resource.aws_eks_addon.this")
    assert "enableNetworkPolicy" in expr(addon["configuration_values"])
    assert '"vpc-cni"' in expr(addon["configuration_values"])
    parameters = {
        p["attributes"]["name"]: p["attributes"]["value"]
        for p in blocks("modules/database", "resource.aws_db_parameter_group.this", "parameter")
    }
    assert parameters["log_parameter_max_length"] == "0"
    assert parameters["log_parameter_max_length_on_error"] == "0"
    for module, address in (
        ("modules/database", "resource.aws_cloudwatch_log_group.exports"),
        ("modules/network", "resource.aws_cloudwatch_log_group.flow"),
        ("modules/cluster", "resource.aws_cloudwatch_log_group.control_plane"),
    ):
        assert expr(attrs(module, address)["kms_key_id"]) == "var.kms_key_arn", module
