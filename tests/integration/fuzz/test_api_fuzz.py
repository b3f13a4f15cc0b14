"""Property-based fuzzing of every operation in the live OpenAPI document (schemathesis).

Each generated case is sent to the live API (a uvicorn process on the real stack), with the
credentials of a caller that can reach the operation (a role's token, a signed CDS client JWT,
or none for public routes), and the answer is checked: never a 5xx, a documented status code and
content type, and a body that matches the documented schema.

``make test`` runs :data:`EXAMPLES` examples per operation (``EHR_FUZZ_EXAMPLES``, default 8) so
the suite stays fast; ``make fuzz`` runs many more (see the Makefile).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support.cds import mint_cds_token
from support.fuzz import API_KEY_PREFIX, CDS_CLIENT, PUBLIC, TALLY, FuzzWorld

from ehr.core.config import Settings
from ehr.entrypoints.api import create_app

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("EHR_FUZZ_EXAMPLES", "8"))
# Operations that revoke or change the caller's own credentials get a burner user's token, so
# the other operations keep a working one (a burner answering 401 afterwards is documented).
BURNER_OPERATIONS = frozenset(
    {
        "POST /api/auth/logout",
        "POST /api/auth/password",
        "POST /api/auth/mfa/enroll",
        "POST /api/auth/mfa/confirm",
        "POST /api/auth/mfa/disable",
    }
)


@schemathesis.serializer("x-application/hl7-v2+er7")
def _er7(ctx: Any, value: Any) -> bytes:
    """HL7 v2 bodies (``POST /api/hl7v2/messages``): the generated text as UTF-8."""
    del ctx
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return value if isinstance(value, bytes) else str(value if value is not None else "").encode()


# The document the live server publishes is the app's own (``create_app(...).openapi()``): built
# in process at collection, so each operation is its own test id (``[POST /api/auth/login]``).
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())


def _headers(world: FuzzWorld, case: Any) -> dict[str, str]:
    key = f"{case.method.upper()} {case.operation.path}"
    caller = world.callers.get(key) or world.callers.get(f"* {case.operation.path}")
    assert caller is not None, f"{key}: not a route of the app"
    if caller == PUBLIC:
        return {}
    if caller == CDS_CLIENT:
        assert world.cds_key is not None
        audience = f"{world.base_url}{case.formatted_path}"
        token = mint_cds_token(world.cds_key, issuer=world.cds_issuer, audience=audience)
        return {"Authorization": f"Bearer {token}"}
    if caller.startswith(API_KEY_PREFIX):
        return {"X-API-Key": world.tokens[caller]}
    tokens = world.burner_tokens if key in BURNER_OPERATIONS else world.tokens
    return {"Authorization": f"Bearer {tokens[caller]}"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("EHR_FUZZ_RANDOM") is None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_operation_never_fails_and_keeps_its_contract(case: Any, fuzz_world: FuzzWorld) -> None:
    headers = {**(case.headers or {}), **_headers(fuzz_world, case)}
    response = case.call(base_url=fuzz_world.base_url, headers=headers, timeout=60)
    TALLY[response.status_code] += 1
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
