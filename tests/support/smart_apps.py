"""SMART App Launch test parts: an app registered in a tenant, users with known passwords (a
clinician linked to a Practitioner, a portal patient, one with TOTP), PKCE pairs, and reading the
authorization pages' hidden fields.

``make_people(world_tenant, sessions, settings, fhir)``  :class:`People` of the tenant
``register_test_app(sessions, slug, ...)``               the app's client_id (and secret)
``pkce()``                                               ``(verifier, challenge)`` S256
``hidden_fields(html)``                                  the form's hidden inputs by name
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import pyotp
from sqlalchemy import select

from ehr.core.config import Settings
from ehr.core.db.models import User
from ehr.fhir import FhirClient
from ehr.platform.auth import mfa
from ehr.platform.auth.service import create_user
from ehr.platform.smart import register_app
from support.database import Sessions

__all__ = ["People", "Person", "hidden_fields", "make_people", "pkce", "register_test_app"]

REDIRECT_URI = "https://app.example/callback"
APP_SCOPES = (
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.rs",
    "user/*.rs",
)
_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@dataclass(frozen=True)
class Person:
    user_id: uuid.UUID
    username: str
    password: str
    totp: pyotp.TOTP | None = None
    # MFA users: their recovery codes (a TOTP code of the enrolment's step is spent already).
    recovery_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class People:
    clinician: Person
    portal: Person
    with_mfa: Person
    practitioner_id: str


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def hidden_fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in _INPUT.findall(page)}


def _password() -> str:
    return "-".join(secrets.token_urlsafe(6) for _ in range(4))


async def make_people(
    tenant_id: uuid.UUID,
    patient_id: str,
    sessions: Sessions,
    settings: Settings,
    fhir: FhirClient,
    slug: str,
) -> People:
    practitioner = await fhir.for_tenant(slug).create(
        {"resourceType": "Practitioner", "name": [{"family": "Launcher", "given": ["Ada"]}]}
    )
    run = uuid.uuid4().hex[:8]
    made: dict[str, Person] = {}
    async with sessions() as session, session.begin():
        for label, roles, patient in (
            ("clinician", ["physician"], None),
            ("portal", ["patient"], patient_id),
            ("mfa", ["nurse"], None),
        ):
            password = _password()
            user = await create_user(
                session,
                tenant_id=tenant_id,
                username=f"smart.{label}.{run}",
                password=password,
                roles=roles,
                display_name=f"Smart {label.title()}",
                patient_id=patient,
                granted_by="test",
                settings=settings,
            )
            if label == "clinician":
                user.practitioner_id = str(practitioner["id"])
            totp = None
            codes: list[str] = []
            if label == "mfa":
                enrolment = await mfa.start_enrolment(session, settings, user)
                totp = pyotp.TOTP(enrolment.secret)
                codes = await mfa.confirm_enrolment(session, settings, user, totp.now())
            made[label] = Person(user.id, user.username, password, totp, tuple(codes))
    return People(
        clinician=made["clinician"],
        portal=made["portal"],
        with_mfa=made["mfa"],
        practitioner_id=str(practitioner["id"]),
    )


async def register_test_app(
    sessions: Sessions,
    slug: str,
    *,
    confidential: bool = False,
    redirect_uri: str = REDIRECT_URI,
    scopes: tuple[str, ...] = APP_SCOPES,
    launch_types: tuple[str, ...] = ("ehr", "standalone"),
) -> tuple[str, str | None]:
    async with sessions() as session, session.begin():
        app = await register_app(
            session,
            tenant=slug,
            name="Growth Chart",
            confidential=confidential,
            redirect_uris=[redirect_uri],
            scopes=scopes,
            launch_types=launch_types,
            launch_uri="https://app.example/launch",
        )
    return app.client_id, app.client_secret


async def user_row(sessions: Sessions, user_id: uuid.UUID) -> Any:
    async with sessions() as session:
        return await session.scalar(select(User).where(User.id == user_id))
