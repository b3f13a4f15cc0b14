"""The operator CLI against the real stack: tenants, users, API keys; bad input exits 2."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from ehr.entrypoints.cli import app

pytestmark = pytest.mark.integration

NewSlug = Callable[[str], str]


def ehr(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_tenant_user_and_api_key_lifecycle(new_slug: NewSlug) -> None:
    slug = new_slug("cli")
    code, out, err = ehr("tenants", "create", slug, "--name", "CLI clinic")
    assert code == 0, err
    assert f"tenant {slug} created" in out
    code, out, _ = ehr("tenants", "create", slug, "--name", "CLI clinic")
    assert code == 0
    assert "exists (active)" in out
    code, out, _ = ehr("tenants", "list")
    assert re.search(rf"^{slug}\tactive\t\d+\tCLI clinic$", out, re.MULTILINE)

    code, out, err = ehr("users", "create", "--tenant", slug, "cli.nurse", "--role", "nurse")
    assert code == 0, err
    assert "password (shown once): " in out
    code, out, err = ehr(
        "users", "create", "--tenant", slug, "cli.doc", "--role", "physician",
        "--role", "admin", "--password-stdin", stdin="a long enough cli passphrase 42\n",
    )  # fmt: skip
    assert code == 0, err
    assert "password" not in out
    code, out, err = ehr("users", "reset-mfa", "--tenant", slug, "cli.doc")
    assert code == 0, err

    code, out, err = ehr(
        "api-keys", "create", "--tenant", slug, "--name", "lab feed",
        "--permission", "patient:read", "--ttl-days", "30",
    )  # fmt: skip
    assert code == 0, err
    key_id = re.search(r"api key ([0-9a-f-]{36})", out)
    assert key_id is not None
    assert "key (shown once): " in out
    code, out, _ = ehr("api-keys", "list", "--tenant", slug)
    assert key_id.group(1) in out
    assert "\tactive\t" in out
    code, out, err = ehr("api-keys", "revoke", key_id.group(1))
    assert code == 0, err
    code, out, _ = ehr("api-keys", "list", "--tenant", slug)
    assert "\trevoked\t" in out

    code, out, err = ehr("tenants", "disable", slug)
    assert code == 0, err
    code, out, _ = ehr("tenants", "list")
    assert re.search(rf"^{slug}\tdisabled\t", out, re.MULTILINE)


@pytest.mark.parametrize(
    "args",
    [
        ("tenants", "create", "Bad_Slug", "--name", "x"),
        ("tenants", "create", "default", "--name", "x"),
        ("tenants", "disable", "no-such-tenant-zz"),
        ("users", "create", "--tenant", "no-such-tenant-zz", "u1", "--role", "nurse"),
        ("users", "reset-mfa", "--tenant", "no-such-tenant-zz", "u1"),
        ("api-keys", "revoke", "not-a-uuid"),
        ("api-keys", "revoke", "00000000-0000-0000-0000-000000000000"),
        ("api-keys", "list", "--tenant", "no-such-tenant-zz"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    code, out, err = ehr(*args)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("ehr ")


def test_weak_password_and_unknown_role_exit_2(new_slug: NewSlug) -> None:
    slug = new_slug("cli2")
    assert ehr("tenants", "create", slug, "--name", "x")[0] == 0
    code, _, err = ehr(
        "users", "create", "--tenant", slug, "u1", "--role", "nurse", "--password-stdin",
        stdin="short\n",
    )  # fmt: skip
    assert code == 2
    assert "validation_failed" in err or "password" in err
    code, _, err = ehr("users", "create", "--tenant", slug, "u2", "--role", "wizard")
    assert code == 2
    assert "wizard" in err


def test_portal_user_needs_a_patient_of_its_tenant(new_slug: NewSlug) -> None:
    slug = new_slug("cli3")
    assert ehr("tenants", "create", slug, "--name", "x")[0] == 0
    code, _, err = ehr(
        "users", "create", "--tenant", slug, "portal.user", "--role", "patient",
        "--patient-id", "does-not-exist-here",
    )  # fmt: skip
    assert code == 2
    assert "fhir_not_found" in err


def test_seed_patients_only_into_an_existing_tenant(new_slug: NewSlug) -> None:
    code, _, err = ehr("seed", "--tenant", "no-such-tenant-zz")
    assert code == 2
    assert "tenant_not_found" in err
