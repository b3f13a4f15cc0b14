"""The SMART client registry's input rules (no database): Backend Services clients get only
``system/`` scopes, in v2 (``.cruds`` in order) or v1 (``.read``/``.write``/``.*``) form."""

from __future__ import annotations

import pytest

from ehr.platform.smart.clients import system_scope_problem


@pytest.mark.parametrize(
    "scope",
    ["system/Patient.rs", "system/*.cruds", "system/Observation.r", "system/Group.read",
     "system/*.*", "system/Patient.write"],
)  # fmt: skip
def test_system_scopes_are_accepted(scope: str) -> None:
    assert system_scope_problem(scope) is None


@pytest.mark.parametrize(
    "scope",
    ["patient/Patient.rs", "user/*.cruds", "system/Patient", "system/.rs", "system/patient.rs",
     "system/Patient.sr", "system/Patient.rx", "launch/patient", "openid", "system/Pat-ient.rs"],
)  # fmt: skip
def test_other_scopes_are_refused_with_a_reason(scope: str) -> None:
    problem = system_scope_problem(scope)
    assert problem is not None
    assert repr(scope) in problem
