"""ALL tables of our own PostgreSQL schema, in one place.

No clinical data lives here (HAPI holds every clinical fact); only operational and identity
state. Models are declared in schema :data:`MODEL_SCHEMA` (``ehr_app``); the engine's
``schema_translate_map`` points that at ``settings.db.app_schema`` at run time.

Conventions: SQLAlchemy 2 typed declarative mapping; constraint names from
:data:`NAMING_CONVENTION` (so Alembic migrations are deterministic); relationships must be
declared with ``lazy="raise"`` (load explicitly with ``selectinload``; no implicit I/O in async
code); timestamps are ``timestamptz``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "JOB_QUEUE_SCHEMA_SUFFIX",
    "MODEL_SCHEMA",
    "NAMING_CONVENTION",
    "ApiKey",
    "AuditCheckpoint",
    "AuditRecord",
    "Base",
    "CdsClient",
    "CdsFeedback",
    "EventDeadLetter",
    "EventOutbox",
    "EventReceipt",
    "IdempotencyKey",
    "Job",
    "JobStep",
    "MedicationSafetyPolicy",
    "MfaSecret",
    "NoteTemplate",
    "OrderPolicy",
    "PharmacyLedgerEntry",
    "PharmacyLocation",
    "PharmacyLot",
    "PharmacyProduct",
    "PharmacyStock",
    "PharmacyVerification",
    "RecoveryCode",
    "RefreshSession",
    "ResultPolicy",
    "RevokedToken",
    "RoleGrant",
    "SigningKey",
    "SmartAssertionUse",
    "SmartAuthorization",
    "SmartClient",
    "SmartLaunch",
    "SmartRefreshToken",
    "Tenant",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "job_queue_schema",
]

# The schema name models are declared in; mapped to settings.db.app_schema by the engine.
MODEL_SCHEMA: Final = "ehr_app"

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every app table."""

    metadata = MetaData(schema=MODEL_SCHEMA, naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute as-is
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB,
        uuid.UUID: UUID(as_uuid=True),
        list[str]: ARRAY(String(128)),
        Decimal: Numeric(14, 3),
        date: Date,
    }


class IdempotencyKey(Base):
    """A business POST's ``Idempotency-Key`` and the answer given to it.

    The first request with a (tenant, key) inserts a row with no response yet; on completion the
    status and body are stored, and a retry with the same key and the same request fingerprint
    receives the stored answer (a different fingerprint is a conflict). Rows expire.
    The response body must be the API's own summary document, never a full clinical resource.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        # Unique (tenant, key): the constraint is the lock between concurrent retries.
        UniqueConstraint("tenant", "key"),
        # Expired rows are purged by expires_at.
        Index(None, "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    # Hex SHA-256 of method, route and canonical body: detects a reused key on another request.
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    # NULL while the first request is still in flight.
    response_status: Mapped[int | None] = mapped_column(SmallInteger)
    response_body: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]


# --- identity and tenancy -------------------------------------------------------------------


class Tenant(Base):
    """A tenant: one HAPI partition (``slug`` is the partition name used in FHIR URLs)."""

    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'", name="slug_format"),
        CheckConstraint("status IN ('active', 'disabled')", name="status_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Partition name in HAPI URLs: /fhir/{slug}/Patient/...
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    # HAPI partition id (an integer HAPI requires; unique across tenants).
    partition_id: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    disabled_at: Mapped[datetime | None]


class User(Base):
    """A person who logs in. Unique username per tenant; only a password hash is stored."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "username"),
        CheckConstraint("status IN ('active', 'disabled')", name="status_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    username: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str | None] = mapped_column(String(200))
    # argon2 (passlib) hash.
    password_hash: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="active")
    # True once an MFA enrolment is confirmed: a TOTP (or recovery) code is then required.
    mfa_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # FHIR Patient id for the portal `patient` role (in the tenant's partition), else NULL.
    patient_id: Mapped[str | None] = mapped_column(String(64))
    # FHIR Practitioner id of a clinician (a SMART app's fhirUser), else None.
    practitioner_id: Mapped[str | None] = mapped_column(String(64))
    failed_login_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    password_changed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class RoleGrant(Base):
    """A role held by a user (roles and their permissions are defined in code)."""

    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[datetime] = mapped_column(server_default=func.now())
    granted_by: Mapped[str | None] = mapped_column(String(200))


class RefreshSession(Base):
    """One refresh token (only its SHA-256 is stored), in a rotation family.

    Rotation marks the presented token ``rotated_at`` and issues a child in the same family;
    presenting a token that was already rotated (reuse) revokes the whole family.
    """

    __tablename__ = "refresh_sessions"
    __table_args__ = (Index(None, "family_id"), Index(None, "user_id"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    family_id: Mapped[uuid.UUID]
    parent_id: Mapped[uuid.UUID | None]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))


class RevokedToken(Base):
    """A revoked access token (by ``jti``): the source of truth behind Redis's deny-list."""

    __tablename__ = "revoked_tokens"
    __table_args__ = (Index(None, "expires_at"),)

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID | None]
    revoked_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # The token's own exp: the row can be purged after it.
    expires_at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(String(64))


class MfaSecret(Base):
    """A user's TOTP secret, encrypted at rest (Fernet; keys from settings, rotatable)."""

    __tablename__ = "mfa_secrets"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    confirmed_at: Mapped[datetime | None]
    # Highest TOTP time-step accepted: a code cannot be reused inside its window.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(Base):
    """A one-time MFA recovery code (hash only)."""

    __tablename__ = "recovery_codes"
    __table_args__ = (Index(None, "user_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    used_at: Mapped[datetime | None]


class ApiKey(Base):
    """A service client's key: tenant-bound, scoped, expiring; only a hash is stored."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(200))
    # Shown to operators to tell keys apart (the key itself starts with it).
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    # SHA-256 hex of the whole key (keys are 256-bit random: a slow hash adds nothing).
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(128)), default=list)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_by: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    # The key this one replaced (rotation).
    rotated_from_id: Mapped[uuid.UUID | None]


class SmartClient(Base):
    """A registered SMART client of one tenant (ADR 0032). Backend Services clients
    (``kind`` "backend_service") authenticate with a JWT signed by a key of their registered
    JWKS (``private_key_jwt``) and may be granted only ``system/`` scopes from ``scopes``."""

    __tablename__ = "smart_clients"
    __table_args__ = (
        Index(None, "tenant_id"),
        CheckConstraint(
            "kind IN ('backend_service', 'public_app', 'confidential_app')", name="kind_known"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # The OAuth client_id (random, unique across tenants: the token endpoint finds the tenant).
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    # The public keys (a JWKS document) the client signs its assertions with.
    jwks: Mapped[dict[str, Any]]
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(128)), default=list)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_by: Mapped[str | None] = mapped_column(String(200))
    disabled_at: Mapped[datetime | None]
    # App clients (kinds "public_app", "confidential_app"): the exact redirect URIs, the launch
    # types ("ehr", "standalone") and where the EHR opens the app (its launch URL).
    redirect_uris: Mapped[list[str]] = mapped_column(ARRAY(String(2000)), default=list)
    launch_types: Mapped[list[str]] = mapped_column(ARRAY(String(16)), default=list)
    launch_uri: Mapped[str | None] = mapped_column(String(2000))
    # A confidential app with a shared secret: SHA-256 of the (256-bit random) secret.
    secret_hash: Mapped[str | None] = mapped_column(String(64))


class SmartLaunch(Base):
    """An EHR launch minted by the API for a user, a patient (and encounter) and one app: the
    ``launch`` parameter's SHA-256, short-lived and spent by the first authorization."""

    __tablename__ = "smart_launches"
    __table_args__ = (Index(None, "expires_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("smart_clients.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    patient: Mapped[str] = mapped_column(String(64))
    encounter: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class SmartAuthorization(Base):
    """One authorization request of the App Launch flow, from ``/oauth2/authorize`` to the code's
    redemption: the browser that started it (a CSRF token's hash), the user who logged in, what
    they consented to, and the code (its SHA-256; single use, short-lived)."""

    __tablename__ = "smart_authorizations"
    __table_args__ = (
        Index(None, "expires_at"),
        CheckConstraint(
            "status IN ('pending', 'authenticated', 'code', 'redeemed', 'ended')",
            name="status_known",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("smart_clients.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    csrf_hash: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    state: Mapped[str | None] = mapped_column(String(2000))
    nonce: Mapped[str | None] = mapped_column(String(512))
    code_challenge: Mapped[str] = mapped_column(String(128))
    requested_scopes: Mapped[list[str]] = mapped_column(ARRAY(String(128)), default=list)
    granted_scopes: Mapped[list[str]] = mapped_column(ARRAY(String(128)), default=list)
    launch_hash: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    patient: Mapped[str | None] = mapped_column(String(64))
    encounter: Mapped[str | None] = mapped_column(String(64))
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The token family issued for the code: revoked if the code is presented again.
    family_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]


class SmartRefreshToken(Base):
    """A SMART app's refresh token (its SHA-256), one of a rotating family: presenting a rotated
    one again revokes the family. ``offline``: offline_access (long-lived), else online_access."""

    __tablename__ = "smart_refresh_tokens"
    __table_args__ = (Index(None, "family_id"), Index(None, "expires_at"))

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[uuid.UUID]
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("smart_clients.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(128)), default=list)
    patient: Mapped[str | None] = mapped_column(String(64))
    encounter: Mapped[str | None] = mapped_column(String(64))
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class SmartAssertionUse(Base):
    """A client assertion's ``jti`` seen at the token endpoint, kept until the assertion expires:
    the primary key refuses its replay (durably, in PostgreSQL)."""

    __tablename__ = "smart_assertion_uses"

    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("smart_clients.id", ondelete="CASCADE"), primary_key=True
    )
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime]


class SigningKey(Base):
    """An asymmetric JWT signing key (ES256) with its ``kid``; private part encrypted at rest.

    The newest active key signs; every key not yet expired is published in the JWKS so tokens
    signed before a rotation stay verifiable until they expire.
    """

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Set when a newer key takes over signing.
    retired_at: Mapped[datetime | None]
    # After this the key is no longer published or accepted.
    expires_at: Mapped[datetime | None]


# --- audit ----------------------------------------------------------------------------------


class AuditRecord(Base):
    """One access to patient data (or a security event): append-only, hash-chained per shard.

    Records form one chain per ``(tenant, shard)``: ``seq`` 1, 2, 3, ... and ``record_hash`` =
    SHA-256 over the canonical JSON of the record's fields and ``prev_hash`` (the previous record
    of the same chain). The shard is the writer's lane (several replicas append to one tenant
    without queueing on one lock); :class:`AuditCheckpoint` signs every shard's head. A database
    trigger refuses UPDATE and DELETE; the chains and checkpoints detect edits made around it. No
    PHI: ids and codes only. See docs/adr/0008-audit-trail.md.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        UniqueConstraint("tenant", "shard", "seq"),
        Index(None, "tenant", "occurred_at"),
        Index(None, "tenant", "patient_id"),
        Index(None, "tenant", "actor_id"),
        CheckConstraint("outcome IN ('success', 'failure', 'denied')", name="outcome_known"),
        CheckConstraint("shard >= 0", name="shard_range"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    # Tenant slug (or "_system" for events outside any tenant).
    tenant: Mapped[str] = mapped_column(String(63))
    # The chain (writer lane) within the tenant. No server default on purpose: a writer that
    # does not know about shards must fail, not append to shard 0 behind its head.
    shard: Mapped[int] = mapped_column(SmallInteger)
    # Position in the (tenant, shard) chain, 1-based, gapless.
    seq: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # user | api_key | cds_client | smart_client | system
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    action: Mapped[str] = mapped_column(String(64))  # e.g. patient:read, fhir:search
    resource_type: Mapped[str | None] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(SmallInteger)
    source_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    request_id: Mapped[str | None] = mapped_column(String(128))
    purpose_of_use: Mapped[str | None] = mapped_column(String(64))
    break_glass: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    break_glass_reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None]
    prev_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed statement of the head of every shard chain of a tenant at one moment.

    ``heads`` maps the shard (as a string) to ``[seq, record_hash]``. Checkpoints of a tenant are
    numbered (``seq``) and chained (``prev_hash`` = SHA-256 of the previous checkpoint's signed
    document); ``signature`` is ES256 (raw r||s, base64url) by signing key ``key_id`` over that
    document. Append-only (trigger). What this adds to the chains: removing a shard's newest
    records, a whole shard, or rewriting a chain consistently after a checkpoint is detected.
    """

    __tablename__ = "audit_checkpoints"
    __table_args__ = (UniqueConstraint("tenant", "seq"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(63))
    seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    heads: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))


# --- medication safety ----------------------------------------------------------------------


class MedicationSafetyPolicy(Base):
    """A tenant's medication-safety display policy (which alerts interrupt the prescriber).

    Display only: the knowledge base's severities never change. No row = the default policy
    (contraindicated and major interrupt; the KB's per-rule display otherwise). Rule ids in
    ``rule_display`` were checked against the KB when saved; ids a later KB drops are ignored.
    """

    __tablename__ = "medication_safety_policies"
    __table_args__ = (
        CheckConstraint(
            "interruptive_severities <@ "
            "ARRAY['contraindicated', 'major', 'moderate', 'minor']::varchar[]",
            name="severities_known",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # One policy per tenant; it goes with the tenant.
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    # KB severities whose issues interrupt (engine Policy.interruptive).
    interruptive_severities: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    # rule id -> display (interruptive | passive | informational): per-rule choices.
    rule_display: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Who saved it last: "<actor type>:<id>" (user or API key id), never a name.
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


# --- CDS Hooks ------------------------------------------------------------------------------


class CdsClient(Base):
    """A CDS Hooks client (an EHR, or one of our frontends) trusted by one tenant.

    The client signs a JWT on every call (asymmetric keys only); ``issuer`` (the JWT ``iss``)
    names it and binds the call to ``tenant_id``. Its public keys come from ``jwks`` (a JWKS
    document stored here) and/or the ``jku`` URLs in ``jku_allowlist`` (exact matches). FHIR
    servers it may name in ``fhirServer`` are listed in ``fhir_servers``: we fetch missing
    prefetch data from nowhere else. ``first_party``: when the call names no ``fhirServer``, data
    is read from HAPI in the client's tenant (our own frontends).
    """

    __tablename__ = "cds_clients"
    __table_args__ = (
        Index(None, "tenant_id"),
        CheckConstraint(
            "jwks IS NOT NULL OR cardinality(jku_allowlist) > 0", name="has_key_source"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    issuer: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    jwks: Mapped[dict[str, Any] | None]
    jku_allowlist: Mapped[list[str]] = mapped_column(
        ARRAY(String(2048)), default=list, server_default=text("'{}'")
    )
    fhir_servers: Mapped[list[str]] = mapped_column(
        ARRAY(String(2048)), default=list, server_default=text("'{}'")
    )
    first_party: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class CdsFeedback(Base):
    """What a clinician did with a CDS card (CDS Hooks 2.0 feedback), for alert-fatigue review.

    ``rule_id`` is the rule or care-gap id that produced the card (looked up from the card's uuid
    when the card was issued by this service recently; None otherwise). ``user_comment`` is the
    clinician's free text from ``overrideReason.userComment``: it may hold PHI and is never logged.
    The same card, outcome and outcome time sent twice is stored once.
    """

    __tablename__ = "cds_feedback"
    __table_args__ = (
        UniqueConstraint("tenant_id", "card_uuid", "outcome", "outcome_timestamp"),
        Index(None, "tenant_id", "service_id", "received_at"),
        CheckConstraint("outcome IN ('accepted', 'overridden')", name="outcome_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cds_clients.id", ondelete="SET NULL")
    )
    service_id: Mapped[str] = mapped_column(String(64))
    card_uuid: Mapped[uuid.UUID]
    rule_id: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    outcome_timestamp: Mapped[datetime]
    # The ids of the suggestions the clinician accepted (``acceptedSuggestions[].id``).
    accepted_suggestions: Mapped[list[str]] = mapped_column(
        ARRAY(String(128)), default=list, server_default=text("'{}'")
    )
    # ``overrideReason.reason`` (a Coding: system, code, display).
    override_reason: Mapped[dict[str, Any] | None]
    user_comment: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())


class NoteTemplate(Base):
    """A tenant's own clinical-note template (the notes module; shipped templates are code).

    ``key`` is what a note is created from (``NoteCreate.kind``); it never equals a shipped
    template's key (the notes module refuses that: a tenant adds templates, it does not
    silently change what ``soap`` means). ``type_code``/``type_display`` are the LOINC
    document type (one of the note types the notes module allows); ``sections`` the headings
    of the note's skeleton. ``created_by``/``updated_by``: ``"<actor type>:<id>"``, never a name.
    """

    __tablename__ = "note_templates"
    __table_args__ = (
        UniqueConstraint("tenant_id", "key"),
        CheckConstraint("key ~ '^[a-z0-9][a-z0-9-]{0,63}$'", name="key_shape"),
        CheckConstraint("type_code ~ '^[0-9]{1,7}-[0-9]$'", name="loinc_shape"),
        CheckConstraint("cardinality(sections) BETWEEN 1 AND 40", name="sections_bounded"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    type_code: Mapped[str] = mapped_column(String(16))
    type_display: Mapped[str] = mapped_column(String(200))
    sections: Mapped[list[str]] = mapped_column(ARRAY(String(120)))
    requires_cosign: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    created_by: Mapped[str] = mapped_column(String(200))
    updated_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ResultPolicy(Base):
    """A tenant's result policy (the results module, ADR 0022): critical-value overrides, how
    long an unacknowledged critical result may wait before it counts as escalated, and how long
    a final result waits before the patient portal shows it.

    No row = the defaults (the shipped, cited critical-value table; 60 minutes; no delay).
    ``critical_overrides`` maps a LOINC code to ``{"low": float | None, "high": float | None,
    "unit": "<UCUM>"}`` — it replaces the shipped row of that code or adds a code (checked when
    saved: LOINC check digit, UCUM unit through ucumvert). ``updated_by``: ``"<actor type>:<id>"``.
    """

    __tablename__ = "result_policies"
    __table_args__ = (
        CheckConstraint("escalation_minutes BETWEEN 1 AND 1440", name="escalation_bounded"),
        CheckConstraint("patient_release_hours BETWEEN 0 AND 168", name="patient_release_bounded"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # One policy per tenant; it goes with the tenant.
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    escalation_minutes: Mapped[int] = mapped_column(
        SmallInteger, default=60, server_default=text("60")
    )
    patient_release_hours: Mapped[int] = mapped_column(
        SmallInteger, default=0, server_default=text("0")
    )
    critical_overrides: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


# --- orders -----------------------------------------------------------------------------------


class OrderPolicy(Base):
    """A tenant's order-signing policy: how far back a new order repeating one of the patient's
    orders (same code) counts as a duplicate, per kind, and whether a duplicate interrupts the
    sign (it then needs an override reason). No row = the defaults of the orders module.
    Medication duplicates are the medication-safety engine's (duplicate therapy), not these.
    """

    __tablename__ = "order_policies"
    __table_args__ = (
        CheckConstraint("lab_duplicate_window_hours BETWEEN 0 AND 2160", name="lab_window_bounded"),
        CheckConstraint(
            "imaging_duplicate_window_hours BETWEEN 0 AND 2160", name="imaging_window_bounded"
        ),
        CheckConstraint(
            "referral_duplicate_window_hours BETWEEN 0 AND 8760", name="referral_window_bounded"
        ),
        CheckConstraint(
            "duplicate_display IN ('interruptive', 'passive')", name="duplicate_display_known"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # One policy per tenant; it goes with the tenant.
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    lab_duplicate_window_hours: Mapped[int] = mapped_column(Integer)
    imaging_duplicate_window_hours: Mapped[int] = mapped_column(Integer)
    referral_duplicate_window_hours: Mapped[int] = mapped_column(Integer)
    duplicate_display: Mapped[str] = mapped_column(String(16))
    # Who saved it last: "<actor type>:<id>" (user or API key id), never a name.
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


# procrastinate's own tables, types and functions (the job queue, ADR 0024) live in a schema of
# their own next to the app schema: ``<app schema>_queue`` (migration 0010 creates and drops it).
JOB_QUEUE_SCHEMA_SUFFIX: Final = "_queue"


def job_queue_schema(app_schema: str) -> str:
    """The schema holding the job queue of ``app_schema`` (``ehr_app`` → ``ehr_app_queue``)."""
    return f"{app_schema}{JOB_QUEUE_SCHEMA_SUFFIX}"


class Job(Base):
    """A background job's record (ADR 0024): who asked for it, for which tenant, how far it got.

    The queue itself is procrastinate's (schema ``<app schema>_queue``); ``queue_job_id`` is the
    queue row of the current run (a retry of a cancelled job gets a new one). The status shown by
    ``/api/jobs`` is read from that row; this one carries what the queue does not know:
    ``tenant_id`` (None for the platform's own periodic jobs), ``owner`` (``"<actor type>:<id>"``),
    progress, a result summary, the last error (an exception type and a message without PHI),
    whether a cancellation was asked for (a running job sees it at its next progress report) and
    ``run_count``, the fencing token of the current run (a run that was replaced — its worker was
    presumed dead — can no longer record steps or progress). ``args`` are ids and options only.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index(None, "tenant_id", "created_at", "id"),
        Index(None, "queue_job_id"),
        CheckConstraint("progress_done >= 0", name="progress_done_positive"),
        CheckConstraint(
            "progress_total IS NULL OR progress_total >= 0", name="progress_total_positive"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(128))
    owner: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(128))
    queue_job_id: Mapped[int | None] = mapped_column(BigInteger)
    args: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    lock: Mapped[str | None] = mapped_column(String(255))
    queueing_lock: Mapped[str | None] = mapped_column(String(255))
    progress_done: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    progress_total: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(String(1000))
    cancel_requested: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    run_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    scheduled_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class JobStep(Base):
    """A step of a job that has taken effect (ADR 0024): the per-job idempotency record.

    A handler's ``await run.step(name, work)`` runs ``work`` and inserts this row in the SAME
    transaction, under the job's fencing token; a run after a crash finds the row and skips the
    step, so a step's database effects happen exactly once. ``result``: what the step returned
    (ids and counts, no PHI), handed back to the later run instead of re-running it.
    """

    __tablename__ = "job_steps"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[str] = mapped_column(String(200), primary_key=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    run: Mapped[int] = mapped_column(Integer)
    done_at: Mapped[datetime] = mapped_column(server_default=func.now())


# --- domain events (ADR 0023) ---------------------------------------------------------------


class EventOutbox(Base):
    """A domain event written in the same transaction as the app write that caused it.

    The transactional outbox (ADR 0023): ``ehr.platform.events.emit`` adds the row to the
    caller's session, so the event exists exactly when the write committed. The relay copies
    unrelayed rows (``relayed_at IS NULL``, oldest ``id`` first, ``FOR UPDATE SKIP LOCKED``) to
    the Redis stream and stamps ``relayed_at``; a failed attempt raises ``attempts`` and sets
    ``next_attempt_at`` (backoff) and ``last_error`` (an exception type, no PHI). ``payload`` is
    the event envelope (ids and codes only). Rows stay after relaying: they are the durable copy
    the stream is rebuilt from (``ehr events replay-outbox``).
    """

    __tablename__ = "event_outbox"
    __table_args__ = (
        # The relay's scan: unrelayed rows in id order (a partial index stays small).
        Index(
            "ix_event_outbox_unrelayed",
            "id",
            postgresql_where=text("relayed_at IS NULL"),
        ),
        # Replays and pruning by time.
        Index(None, "created_at"),
        CheckConstraint("attempts >= 0", name="attempts_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    tenant: Mapped[str] = mapped_column(String(63))
    type: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    relayed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))


class EventReceipt(Base):
    """Proof that a handler took an event's effect (ADR 0023): written in the handler's own
    transaction, so a redelivered event (at-least-once) finds it and is not handled twice."""

    __tablename__ = "event_receipts"
    __table_args__ = (Index(None, "handled_at"),)

    handler: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    handled_at: Mapped[datetime] = mapped_column(server_default=func.now())


class EventDeadLetter(Base):
    """An event a handler failed on ``attempts`` times (ADR 0023): kept for an operator to read
    and replay (``ehr events dead-letters list|replay``). ``error``: the exception type and a
    message without PHI. ``replayed_at``: when it was sent back to its handler."""

    __tablename__ = "event_dead_letters"
    __table_args__ = (
        Index(None, "handler", "created_at"),
        Index(None, "event_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    event_id: Mapped[uuid.UUID]
    handler: Mapped[str] = mapped_column(String(128))
    tenant: Mapped[str] = mapped_column(String(63))
    type: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    error: Mapped[str] = mapped_column(String(1000))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    replayed_at: Mapped[datetime | None]


# --- outbound webhooks (ADR 0026) -----------------------------------------------------------


class WebhookEndpoint(Base):
    """A tenant's webhook endpoint (ADR 0026): where matching domain events are POSTed.

    ``event_types``: exact types (``order.signed``) or prefixes (``result.*``; ``*`` = all).
    ``secret_encrypted``: the Standard Webhooks signing secret (HMAC needs it in clear at send
    time, so it is encrypted with ``settings.auth.encryption_keys``, never hashed); shown once.
    ``consecutive_failures`` / ``failing_since``: the current streak of failed attempts; the
    endpoint is disabled (``disabled_reason='failing'``) after a sustained streak.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        Index(None, "tenant_id", "created_at"),
        CheckConstraint("consecutive_failures >= 0", name="failures_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(500))
    event_types: Mapped[list[str]]
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(String(64))
    disabled_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    failing_since: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WebhookDelivery(Base):
    """One event sent (or to be sent) to one endpoint (ADR 0026): the delivery log.

    ``event_id`` is the ``webhook-id`` header (stable across retries and replays); ``payload``
    the event envelope (ids and codes only, never PHI); ``status`` ``pending`` (queued),
    ``retrying`` (next attempt at ``next_attempt_at``), ``succeeded`` or ``failed`` (given up).
    ``job_id``: the job of the current attempt (a job that is no longer it does nothing).
    ``last_error``: a code (``timeout``, ``connect_error``, ``http_503``, ``target_refused``),
    never a response body. A replay is a new row with ``replay_of`` set.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(None, "tenant_id", "endpoint_id", "created_at"),
        # One original delivery per (endpoint, event): enqueueing an event twice is a no-op.
        Index(
            "uq_webhook_deliveries_endpoint_event",
            "endpoint_id",
            "event_id",
            unique=True,
            postgresql_where=text("replay_of IS NULL"),
        ),
        CheckConstraint(
            "status IN ('pending', 'retrying', 'succeeded', 'failed')", name="status_known"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(SmallInteger)
    last_latency_ms: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    job_id: Mapped[uuid.UUID | None]
    replay_of: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    delivered_at: Mapped[datetime | None]


# --- HL7 v2 interfaces (ADR 0033) ------------------------------------------------------------


class Hl7Sender(Base):
    """A system allowed to send HL7 v2 messages, bound to one tenant (ADR 0033).

    A message is routed by MSH-3 (sending application) and MSH-4 (sending facility), and by
    MSH-5/MSH-6 too when the registration names them ('' = any). ``message_types``: events
    (``ADT_A01``), a type with every trigger (``ORU_*``) or ``*``. ``processing_ids``: the
    MSH-11 values accepted (``P`` production; ``T`` training, ``D`` debugging on request).
    ``ack_destination_id``: where its enhanced-mode application ACKs (MSH-16) are sent — its
    own MLLP listener, registered as a destination taking ``ACK`` (none: kept, not sent).
    """

    __tablename__ = "hl7_senders"
    __table_args__ = (
        Index(None, "tenant_id"),
        Index(
            "uq_hl7_senders_route",
            "sending_application",
            "sending_facility",
            "receiving_application",
            "receiving_facility",
            unique=True,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    sending_application: Mapped[str] = mapped_column(String(227))
    sending_facility: Mapped[str] = mapped_column(String(227))
    receiving_application: Mapped[str] = mapped_column(
        String(227), default="", server_default=text("''")
    )
    receiving_facility: Mapped[str] = mapped_column(
        String(227), default="", server_default=text("''")
    )
    message_types: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    processing_ids: Mapped[list[str]] = mapped_column(ARRAY(String(1)), default=lambda: ["P"])
    ack_destination_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("hl7_destinations.id", ondelete="SET NULL")
    )
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    disabled_at: Mapped[datetime | None]


class Hl7Message(Base):
    """One received HL7 v2 message: the inbox (ADR 0033). Committed before any ACK is sent.

    ``raw`` is the message as received (normalised to text; PHI: read through the audited API
    only, never logged). ``(sender_id, control_id)`` is unique: a resent MSH-10 gets the stored
    ``ack`` again and is not processed twice. ``status``: ``accepted`` (queued for conversion),
    ``converted``, ``rejected`` (answered AE/AR: nothing to convert), ``failed`` (conversion
    failed; retried), ``dead`` (a dead letter: ``error`` says why; ``ehr hl7 replay``).
    ``error``: a code and location (``PID-7 invalid date``), never a value from the message.
    ``ack`` is the acknowledgement the sender got (the commit ACK in enhanced mode);
    ``application_ack`` the enhanced-mode application acknowledgement, once known.
    """

    __tablename__ = "hl7_messages"
    __table_args__ = (
        Index("uq_hl7_messages_sender_control_id", "sender_id", "control_id", unique=True),
        Index(None, "tenant_id", "received_at"),
        Index(None, "tenant_id", "status", "received_at"),
        Index(None, "tenant_id", "patient_identifier"),
        CheckConstraint(
            "status IN ('accepted', 'converted', 'rejected', 'failed', 'dead')",
            name="status_known",
        ),
        CheckConstraint("channel IN ('mllp', 'http')", name="channel_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    sender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hl7_senders.id", ondelete="CASCADE"))
    control_id: Mapped[str] = mapped_column(String(199))
    message_type: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(8))
    raw: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    ack_code: Mapped[str] = mapped_column(String(2))
    ack: Mapped[str] = mapped_column(Text)
    application_ack: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(1000))
    patient_identifier: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # A failed conversion is tried again not before this (nothing of its sender goes first).
    next_attempt_at: Mapped[datetime | None]
    resources: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    converted_at: Mapped[datetime | None]


class Hl7Destination(Base):
    """Where a tenant's outbound HL7 v2 messages go (ADR 0033): an MLLP endpoint and the events
    it receives (``ORU_R01`` final results, ``ADT_A08`` patient changes). ``receiving_*`` are
    MSH-5/MSH-6 of the messages sent there. Messages to one destination are delivered in the
    order they were queued, one at a time."""

    __tablename__ = "hl7_destinations"
    __table_args__ = (
        Index(None, "tenant_id"),
        UniqueConstraint("tenant_id", "name", name="uq_hl7_destinations_tenant_name"),
        CheckConstraint("port BETWEEN 1 AND 65535", name="port_valid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer)
    tls: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    message_types: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    receiving_application: Mapped[str] = mapped_column(String(227))
    receiving_facility: Mapped[str] = mapped_column(String(227))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    disabled_at: Mapped[datetime | None]


class Hl7OutboundMessage(Base):
    """One message to one destination (ADR 0033): built when the FHIR change was seen (the
    resource version it reflects is ``source``), delivered in ``sequence`` order.

    ``status``: ``pending`` (to send; ``next_attempt_at`` after a failure), ``acked`` (AA/CA
    received), ``sent`` (an application ACK, ``message_type`` ``ACK``: written to the
    connection, not itself acknowledged), ``parked`` (given up: refused with AE/AR, or failing
    after the maximum attempts; ``last_error`` says why; a replay sends it again). ``body`` is
    PHI (never logged). One row per (destination, source): a change seen twice is queued once.
    """

    __tablename__ = "hl7_outbound_messages"
    __table_args__ = (
        UniqueConstraint("destination_id", "source", name="uq_hl7_outbound_destination_source"),
        Index(None, "destination_id", "status", "sequence"),
        Index(None, "tenant_id", "created_at"),
        CheckConstraint("status IN ('pending', 'acked', 'sent', 'parked')", name="status_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    sequence: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    destination_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("hl7_destinations.id", ondelete="CASCADE")
    )
    message_type: Mapped[str] = mapped_column(String(16))
    control_id: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    ack_code: Mapped[str | None] = mapped_column(String(2))
    ack: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    acked_at: Mapped[datetime | None]


# --- Pharmacy inventory (ADR 0034) -----------------------------------------------------------


class PharmacyLocation(Base):
    """A place stock is kept (main pharmacy, a unit's dispensing cabinet), per tenant."""

    __tablename__ = "pharmacy_locations"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PharmacyProduct(Base):
    """A stocked product: an NDC-11 package and its RxNorm concept (ADR 0034).

    ``unit``: the UCUM unit quantities are counted in (``{tbl}``, ``mL``); ``divisible``:
    whether a fraction of a unit may move (a liquid yes, a tablet no). ``schedule``: the DEA
    schedule (``CII``…``CV``; ``CII`` also for IIN) or None; ``reorder_level``: below it a
    location's stock raises ``medication.stock_low``.
    """

    __tablename__ = "pharmacy_products"
    __table_args__ = (
        UniqueConstraint("tenant_id", "ndc11"),
        Index(None, "tenant_id", "rxcui"),
        CheckConstraint("ndc11 ~ '^[0-9]{11}$'", name="ndc11_format"),
        CheckConstraint(
            "schedule IS NULL OR schedule IN ('CII', 'CIII', 'CIV', 'CV')", name="schedule_known"
        ),
        CheckConstraint("reorder_level >= 0", name="reorder_level_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    ndc11: Mapped[str] = mapped_column(String(11))
    rxcui: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(300))
    unit: Mapped[str] = mapped_column(String(32))
    divisible: Mapped[bool] = mapped_column(Boolean, default=False)
    schedule: Mapped[str | None] = mapped_column(String(4))
    reorder_level: Mapped[Decimal] = mapped_column(default=Decimal(0))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PharmacyLot(Base):
    """A manufacturer's lot of a product: its expiry, and a recall (never dispensed after)."""

    __tablename__ = "pharmacy_lots"
    __table_args__ = (UniqueConstraint("product_id", "lot_number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacy_products.id"))
    lot_number: Mapped[str] = mapped_column(String(64))
    expires_on: Mapped[date]
    recalled_at: Mapped[datetime | None]
    recall_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PharmacyStock(Base):
    """The balance of one lot at one location: derived from the ledger, changed only in the
    transaction that appends the ledger row; never negative (ADR 0034)."""

    __tablename__ = "pharmacy_stock"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        Index(None, "tenant_id", "location_id"),
    )

    location_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pharmacy_locations.id"), primary_key=True
    )
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacy_lots.id"), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacy_products.id"))
    quantity: Mapped[Decimal]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PharmacyLedgerEntry(Base):
    """One stock movement: append-only (a trigger refuses UPDATE and DELETE), hash-chained per
    tenant — ``hash`` = SHA-256 of the canonical JSON of the hashed fields and ``prev_hash``;
    ``seq`` 1, 2, 3… without gaps (ADR 0034).

    ``kind``: receive, dispense, return, transfer_out, transfer_in, adjust, count, waste.
    ``quantity`` is signed (what the lot's balance at the location changed by);
    ``balance_after`` the balance it left. ``counted``: what a count found. ``actor`` and
    ``witness``: ``user:<uuid>``; ``reference``: what the movement was for
    (``MedicationDispense/<id>``), ``reason`` free text a person wrote (never PHI by policy).
    """

    __tablename__ = "pharmacy_ledger"
    __table_args__ = (
        UniqueConstraint("tenant_id", "seq"),
        Index(None, "tenant_id", "product_id", "occurred_at"),
        Index(None, "tenant_id", "lot_id"),
        CheckConstraint(
            "kind IN ('receive', 'dispense', 'return', 'transfer_out', 'transfer_in', "
            "'adjust', 'count', 'waste')",
            name="kind_known",
        ),
        CheckConstraint("balance_after >= 0", name="balance_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    # No foreign keys: like the audit log, the record outlives what it names (a removed
    # tenant's products go; its ledger stays, append-only, for the retention the law asks).
    location_id: Mapped[uuid.UUID]
    product_id: Mapped[uuid.UUID]
    lot_id: Mapped[uuid.UUID]
    quantity: Mapped[Decimal]
    balance_after: Mapped[Decimal]
    counted: Mapped[Decimal | None]
    actor: Mapped[str] = mapped_column(String(200))
    witness: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(500))
    reference: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class PharmacyVerification(Base):
    """A signed medication order in the pharmacist's verification queue (ADR 0034): an
    operational projection of the MedicationRequest in HAPI, kept by the change feed.

    ``state``: ``pending`` (to verify), ``approved``, ``rejected``, ``clarification`` (a question
    to the prescriber is open), ``withdrawn`` (the order was stopped or cancelled). ``claimed_by``
    / ``claim_expires_at``: the pharmacist working on it (one at a time; a claim lapses).
    ``priority_rank``: stat 0, asap 1, urgent 2, routine 3 (the queue's order, then age). The
    decision itself is a FHIR Task (``task_id``) with ``focus`` the order.
    """

    __tablename__ = "pharmacy_verifications"
    __table_args__ = (
        UniqueConstraint("tenant_id", "medication_request_id"),
        # The queue's order (the conventional name would pass PostgreSQL's 63 characters).
        Index(
            "ix_pharmacy_verifications_queue", "tenant_id", "state", "priority_rank", "authored_at"
        ),
        CheckConstraint(
            "state IN ('pending', 'approved', 'rejected', 'clarification', 'withdrawn')",
            name="state_known",
        ),
        CheckConstraint("priority_rank BETWEEN 0 AND 3", name="priority_rank_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    medication_request_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16))
    priority_rank: Mapped[int] = mapped_column(SmallInteger)
    authored_at: Mapped[datetime]
    prescriber: Mapped[str | None] = mapped_column(String(200))
    encounter_id: Mapped[str | None] = mapped_column(String(64))
    medication: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claim_expires_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None]
    task_id: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
