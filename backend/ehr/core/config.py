"""Typed, nested settings for the whole service.

Every setting is read from the environment with the prefix ``EHR_`` and ``__`` between levels,
e.g. ``EHR_FHIR__BASE_URL`` sets ``settings.fhir.base_url``. A ``.env`` file in the working
directory is read too. No module reads ``os.environ`` directly: take a :class:`Settings` (from
the app state or :func:`get_settings`).

Outside ``development`` the service refuses to start while a secret still has its shipped
development default; the error names the setting in one line.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "ApiSettings",
    "AuditSettings",
    "AuthSettings",
    "CdsHooksSettings",
    "DatabaseSettings",
    "Environment",
    "FhirSettings",
    "Hl7Settings",
    "InsecureDefaultSecretError",
    "JobsSettings",
    "LogSettings",
    "MedicationSafetySettings",
    "ReadinessSettings",
    "RedisSettings",
    "SecuritySettings",
    "Settings",
    "SettingsError",
    "SmartSettings",
    "TelemetrySettings",
    "describe_settings_error",
    "get_settings",
    "load_settings",
]

# Development defaults. They match the project-local stack started by `make up` / `make test`
# and must never be used anywhere else: see Settings._refuse_default_secrets.
DEV_DB_PASSWORD = "ehr-dev-password"  # noqa: S105 - development-only default, refused elsewhere
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105 - same
DEV_DATABASE_URL = f"postgresql+asyncpg://ehr:{DEV_DB_PASSWORD}@127.0.0.1:55432/ehr"
# A Fernet key (urlsafe base64 of 32 bytes); development only, refused elsewhere.
DEV_ENCRYPTION_KEY = "ZGV2LW9ubHktZmVybmV0LWtleS1jaGFuZ2UtbWUhISE="
# The demo tenant `ehr seed` creates, and the one password of its demo users (development only).
DEMO_TENANT: Final = "demo"
DEMO_PASSWORD: Final = "ehr-demo-only-passphrase-never-in-production"  # noqa: S105


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class InsecureDefaultSecretError(ValueError):
    """Raised at start-up outside development when a secret still has its development default."""


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    # Worker processes of ``ehr serve`` (uvicorn): 0 = one per CPU core, at most 8. Each worker
    # has its own pools (database, Redis, HAPI), so the pools' sizes are per worker.
    workers: int = Field(default=0, ge=0, le=64)
    # Requests with a larger body are refused with 413 before they are read whole.
    max_body_bytes: int = 10 * 1024 * 1024
    # The business API's JSON bodies are small (a clinical form, a list of medications): larger
    # ones are refused before they are parsed (parsing holds the interpreter; see ADR 0015).
    business_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # JSON bodies nested deeper than this (objects and arrays) are refused with 400.
    max_json_depth: int = Field(default=64, ge=8, le=512)
    # Origins allowed for browser frontends (CORS); empty = no cross-origin access.
    cors_origins: list[str] = Field(default_factory=list)


class FhirSettings(BaseModel):
    # Base of HAPI's FHIR endpoint, without a tenant: the FHIR client appends /{tenant}/...
    base_url: str = "http://127.0.0.1:8090/fhir"
    # Tenant (HAPI partition name) used by code paths that have no authenticated principal yet.
    default_tenant: str = "DEFAULT"
    connect_timeout_seconds: float = 2.0
    timeout_seconds: float = 15.0
    max_connections: int = 100
    max_keepalive_connections: int = 20
    # What carries the bytes to HAPI: one pooled aiohttp session (C HTTP parser: the cheaper per
    # request, docs/adr/0001 and 0009) or httpx's own httpcore transport.
    http_backend: Literal["aiohttp", "httpcore"] = "aiohttp"


class DatabaseSettings(BaseModel):
    url: SecretStr = SecretStr(DEV_DATABASE_URL)
    # Our own schema: never `public`, never HAPI's tables.
    app_schema: str = "ehr_app"
    pool_size: int = 10
    max_overflow: int = 10
    # A pooled connection older than this is replaced at checkout (below idle timeouts of
    # PostgreSQL, PgBouncer or a cloud proxy; there is no pre-ping, see ehr.core.db.engine).
    pool_recycle_seconds: int = Field(default=1800, ge=30)
    echo: bool = False


class RedisSettings(BaseModel):
    url: SecretStr = SecretStr("redis://127.0.0.1:56379/0")
    socket_timeout_seconds: float = 2.0


class SecuritySettings(BaseModel):
    # Symmetric key material for app-level secrets (later: MFA secret encryption).
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)


class AuthSettings(BaseModel):
    # JWT issuer and audience (checked on every access token).
    issuer: str = "urn:ehr:platform"
    audience: str = "urn:ehr:api"
    access_token_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    refresh_token_ttl_seconds: int = Field(default=12 * 3600, ge=300)
    # A retired signing key stays in the JWKS (and verifiable) this long after rotation.
    retired_key_grace_seconds: int = 3600
    # NIST SP 800-63B: length only, no composition rules; at least 64 characters allowed.
    password_min_length: int = Field(default=12, ge=8)
    password_max_length: int = Field(default=128, ge=64)
    # Lockout: this many consecutive failures lock the account for lockout_seconds.
    lockout_threshold: int = Field(default=5, ge=1)
    lockout_seconds: int = 900
    # Login attempts allowed per source IP per minute (Redis counter).
    login_attempts_per_ip_per_minute: int = 30
    # Name shown in authenticator apps.
    mfa_issuer_name: str = "EHR Platform"
    # Fernet keys encrypting MFA secrets and signing keys at rest. The first encrypts; all
    # decrypt (rotation: prepend a new key, re-encrypt with `ehr keys reencrypt`, drop the old).
    encryption_keys: list[SecretStr] = Field(
        default_factory=lambda: [SecretStr(DEV_ENCRYPTION_KEY)]
    )
    api_key_max_ttl_days: int = 365
    # How long a process may reuse an account or API key it loaded (ehr.platform.auth.
    # principal_cache); changes through the services act at once, hand edits after this. 0: off.
    principal_cache_seconds: float = Field(default=30, ge=0, le=300)


class AuditSettings(BaseModel):
    # Page size limits for audit search and export.
    default_page_size: int = 50
    max_page_size: int = 500
    # How often each replica signs a checkpoint over every shard head of the tenants whose
    # chains moved (one replica at a time; ehr.platform.audit.checkpoints, ADR 0008).
    checkpoint_interval_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)


class LogSettings(BaseModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # JSON lines (for log shippers) or a human console renderer.
    json_format: bool = True


class TelemetrySettings(BaseModel):
    # Tracing exporter: off by default.
    exporter: Literal["none", "console", "otlp"] = "none"
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    service_name: str = "ehr-api"


class ReadinessSettings(BaseModel):
    # Each dependency check in /ready gives up after this long and is reported as failing.
    timeout_seconds: float = 2.0


DEFAULT_GATEWAY_OPERATIONS: Final = (
    "$everything",
    "$validate",
    "$expand",
    "$lookup",
    "$translate",
    "$validate-code",
    "$export",
    "$export-poll-status",
    "$meta",
)


class GatewaySettings(BaseModel):
    """The authenticated FHIR gateway at ``/fhir`` (ehr.platform.gateway;
    docs/adr/0009-fhir-gateway.md)."""

    # The gateway's public base (what clients see): HAPI's address becomes `{public_base_url}/fhir`.
    public_base_url: str = "http://127.0.0.1:8000"
    # `_count` above this is rewritten down to it; searches without `_count` get default_count.
    max_count: int = Field(default=200, ge=1)
    default_count: int = Field(default=50, ge=1)
    # `_history` pages are capped at this `_count` (a history without `_since` still gets it).
    max_history_count: int = Field(default=50, ge=1)
    # `_total=accurate` makes HAPI count every match; when False it is downgraded to `estimate`.
    allow_total_accurate: bool = False
    # Requests per minute per client (user or API key); over it → 429 + Retry-After.
    rate_limit_per_minute: int = Field(default=600, ge=1)
    # A HAPI answer slower than this (headers or any body chunk) → 504 OperationOutcome.
    upstream_timeout_seconds: float = Field(default=30.0, gt=0)
    # `$operations` the gateway forwards; every other one is refused with 403.
    operations: list[str] = Field(default_factory=lambda: list(DEFAULT_GATEWAY_OPERATIONS))
    # Operations forwarded for admins only (role `admin`).
    admin_operations: list[str] = Field(default_factory=lambda: ["$trigger-subscription"])
    # Request bodies up to this size are JSON-checked before forwarding (400 when malformed);
    # larger ones stream through unbuffered (HAPI validates them). Bounded by api.max_body_bytes.
    validate_json_max_bytes: int = Field(default=1024 * 1024, ge=0)
    # How long a search's paging ids (`_getpages`) stay bound to the tenant that created them.
    page_ttl_seconds: int = Field(default=3600, ge=60)
    # HAPI answers up to this size are read whole and sent with Content-Length (one audit record
    # with the patients they name); larger ones stream with flat memory.
    buffer_answer_bytes: int = Field(default=512 * 1024, ge=0, le=16 * 1024 * 1024)


class JobsSettings(BaseModel):
    """How ``ehr worker`` runs jobs and how it finds the jobs of a worker that died."""

    # Jobs one worker process runs at the same time (asyncio tasks).
    concurrency: int = Field(default=4, ge=1, le=64)
    # The queues this worker takes jobs from (JSON list); empty = every queue.
    queues: list[str] = Field(default_factory=list)
    # The worker's /health and /metrics (0 = no HTTP port).
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=9465, ge=0, le=65535)
    # How often a worker writes its heartbeat row (procrastinate_workers.last_heartbeat).
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    # A worker whose heartbeat is older than this is presumed dead: its running jobs are put
    # back in the queue. Several heartbeat intervals, so that a slow database is not a death.
    stalled_after_seconds: float = Field(default=30.0, gt=0)
    # How often a worker looks for such jobs (and refreshes the queue-depth gauge).
    sweep_seconds: float = Field(default=15.0, gt=0)
    # On SIGTERM the running jobs get this long to finish; then they are released (put back in
    # the queue for another worker) and the worker exits. Below the orchestrator's kill delay.
    shutdown_grace_seconds: float = Field(default=25.0, ge=0)
    # Finished jobs (queue rows and our records) are deleted after this many days.
    retention_days: int = Field(default=30, ge=1)


class EventsSettings(BaseModel):
    """How the relay moves the outbox to Redis and how consumers retry."""

    model_config = ConfigDict(frozen=True)

    # The stream is ``<stream_prefix>:<app schema>`` (one stream, the tenant is a field).
    stream_prefix: str = "ehr:events"
    # XADD ... MAXLEN ~ this: the stream is a window, the outbox the record.
    stream_maxlen: int = Field(default=100_000, ge=1_000)
    # Rows the relay takes per transaction.
    relay_batch: int = Field(default=200, ge=1, le=5_000)
    # The relay wakes on NOTIFY; without one it still looks this often.
    relay_poll_seconds: float = Field(default=2.0, gt=0)
    # Redis (or PostgreSQL) failing: the relay waits base * 2^n, at most max, with jitter.
    relay_backoff_base_seconds: float = Field(default=0.5, gt=0)
    relay_backoff_max_seconds: float = Field(default=30.0, gt=0)
    # Entries one consumer reads per XREADGROUP, and how long it blocks waiting for them (below
    # the Redis client's socket timeout, EHR_REDIS__SOCKET_TIMEOUT_SECONDS, 2 s by default).
    consumer_batch: int = Field(default=50, ge=1, le=1_000)
    consumer_block_ms: int = Field(default=1_000, ge=10, le=1_500)
    # A handler that has not finished after this long is presumed dead: its entry may be
    # claimed by another consumer. Also the first retry's delay.
    handler_timeout_seconds: float = Field(default=30.0, gt=0)
    # Retry n (n >= 1) of a failed entry waits max(handler_timeout, base * 2^(n-1)), capped.
    retry_base_seconds: float = Field(default=1.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    # Deliveries of one entry to one handler before it becomes a dead letter.
    max_attempts: int = Field(default=5, ge=1, le=100)
    # Relayed outbox rows, receipts and replayed dead letters older than this are deleted by the
    # daily ``events.prune`` job. Receipts go with the outbox rows they answer: a replay of a row
    # still in the outbox always finds its receipts.
    retention_days: int = Field(default=14, ge=1)
    # How often the relay counts the outbox (depth and lag gauges).
    gauge_seconds: float = Field(default=10.0, gt=0)


class RealtimeSettings(BaseModel):
    """How long a client may take to authenticate, how often it hears from us, and how far
    behind it may fall before it is disconnected."""

    model_config = ConfigDict(frozen=True)

    # The first WebSocket message (the credential) must arrive within this.
    auth_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # A heartbeat message (with the client's resume position) this often when idle.
    heartbeat_seconds: float = Field(default=15.0, gt=0, le=300)
    # The credential is checked again this often (revocation, disabled account, roles removed).
    revalidate_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Messages waiting for one client; beyond: the client is too slow and is disconnected.
    send_queue_max: int = Field(default=1_000, ge=1, le=100_000)
    # One send taking longer than this (the client stopped reading): disconnected too.
    send_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Stream entries a resume may scan; beyond, the client is told to resynchronise.
    resume_max_entries: int = Field(default=20_000, ge=1, le=1_000_000)
    # The live reader's XREAD BLOCK (below the Redis client's socket timeout, 2 s by default).
    read_block_ms: int = Field(default=1_000, ge=10, le=1_500)
    read_batch: int = Field(default=500, ge=1, le=10_000)


class WebhooksSettings(BaseModel):
    """Targets allowed, timeouts, retries and when a failing endpoint is disabled."""

    model_config = ConfigDict(frozen=True)

    # SSRF guard: allow loopback, private, link-local... targets (tests, on-premise receivers).
    allow_private_targets: bool = False
    # Allow http:// targets outside development (EHR_ENV=development always allows them).
    allow_http: bool = False
    # Per attempt: connecting, reading the answer, and the whole request at most.
    connect_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    read_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    total_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    # Attempts of one delivery before it is ``failed``.
    max_attempts: int = Field(default=8, ge=1, le=50)
    # Retry n waits uniform(0, min(max, base * 2^(n-1))) (full jitter), at least min; a
    # Retry-After answer is honoured (capped at max).
    retry_base_seconds: float = Field(default=5.0, gt=0)
    retry_min_seconds: float = Field(default=1.0, ge=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    # An endpoint failing this many attempts in a row, over at least this long, is disabled.
    disable_after_failures: int = Field(default=20, ge=1)
    disable_after_seconds: float = Field(default=24 * 3600.0, ge=0)


# Resource types whose changes become `fhir.changed` events (one HAPI subscription each).
DEFAULT_WATCHED_TYPES: Final = (
    "Patient",
    "Encounter",
    "Condition",
    "AllergyIntolerance",
    "Observation",
    "DiagnosticReport",
    "ServiceRequest",
    "MedicationRequest",
    "MedicationDispense",
    "MedicationAdministration",
    "Immunization",
    "Procedure",
    "DocumentReference",
    "Appointment",
    "Task",
)


class FhirChangesSettings(BaseModel):
    """FHIR changes as domain events (ehr.platform.fhir_changes; ADR 0027): one HAPI REST-hook
    subscription per watched type in each tenant's partition, notifying the worker."""

    enabled: bool = True
    # Where HAPI sends notifications: the worker's internal listener (its EHR_JOBS__HEALTH_PORT),
    # reachable by HAPI only and never routed by the ingress. `{tenant}/{type}/{id}` is appended.
    notify_url: str = "http://127.0.0.1:9465/internal/fhir-notifications"
    resource_types: list[str] = Field(default_factory=lambda: list(DEFAULT_WATCHED_TYPES))
    # Largest notification body taken (HAPI sends the changed resource); larger → 413.
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)


class MedicationSafetySettings(BaseModel):
    # Directory of an operator-imported RxNorm table (`ehr medication-safety import-rxnorm`);
    # when it holds one, it is used instead of the compact subset shipped in the package.
    rxnorm_dir: Path | None = None


DEFAULT_CDS_ALGORITHMS: Final = (
    "ES256",
    "ES384",
    "ES512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
)


class CdsHooksSettings(BaseModel):
    """CDS Hooks 2.0 services at ``/cds-services`` (ehr.modules.cds_hooks; ADR 0012)."""

    # Public origin of the service as CDS clients call it: a client JWT's `aud` must equal
    # `{public_base_url}{path}` exactly. Empty: the gateway's public_base_url.
    public_base_url: str = ""
    # JWT signature algorithms accepted (asymmetric only; `none` and HS* are always refused).
    algorithms: list[str] = Field(default_factory=lambda: list(DEFAULT_CDS_ALGORITHMS))
    # Clock skew tolerated on `exp`, `iat` and `nbf`.
    clock_skew_seconds: int = Field(default=30, ge=0, le=300)
    # Longest accepted token lifetime (`exp` - `iat`); the spec recommends at most 5 minutes.
    max_token_lifetime_seconds: int = Field(default=300, ge=30, le=3600)
    # Keys fetched from a `jku` are cached this long; an unknown `kid` refetches (at most once
    # per jwks_min_refresh_seconds per URL).
    jwks_cache_seconds: int = Field(default=3600, ge=60)
    jwks_min_refresh_seconds: int = Field(default=30, ge=1)
    jwks_fetch_timeout_seconds: float = Field(default=3.0, gt=0)
    # Reading missing prefetch data from a client's `fhirServer` gives up after this long (→ 412).
    fhir_server_timeout_seconds: float = Field(default=5.0, gt=0)
    # How long order-select's cards are remembered so order-sign does not repeat them.
    shown_card_ttl_seconds: int = Field(default=12 * 3600, ge=60)
    # How long an issued card's rule is remembered for feedback (metrics per rule).
    card_memory_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # Largest hook call (context + prefetch) taken; larger ones are refused with 413 unparsed.
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)


class SmartSettings(BaseModel):
    """The SMART on FHIR authorization server at ``/oauth2`` (ehr.platform.smart; ADR 0032)."""

    # An authorization request (login, MFA, consent) must finish within this long.
    authorization_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    # An authorization code is redeemable this long, once (RFC 6749 recommends at most 10 min).
    code_ttl_seconds: int = Field(default=60, ge=10, le=600)
    # An EHR launch minted by the API (`launch` parameter) is usable this long, once.
    launch_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    # Refresh tokens: online_access lasts about a working shift, offline_access much longer;
    # both rotate on every use and stop when the user or the app is disabled.
    online_refresh_ttl_seconds: int = Field(default=12 * 3600, ge=300)
    offline_refresh_ttl_seconds: int = Field(default=90 * 24 * 3600, ge=3600)


class Hl7Settings(BaseModel):
    """HL7 v2 interfaces (ehr.modules.hl7v2; ADR 0033): the MLLP listener (``ehr hl7 listen``)
    and ``POST /api/hl7v2/messages``."""

    mllp_host: str = "127.0.0.1"
    mllp_port: int = Field(default=2575, ge=1, le=65535)
    # A message larger than this is refused with an AR (its bytes are read and dropped, so the
    # connection stays usable). Results with embedded PDFs run to a few MB.
    max_message_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # A connection with nothing received for this long is closed.
    idle_timeout_seconds: float = Field(default=300.0, gt=0, le=86400)
    max_connections: int = Field(default=256, ge=1, le=10000)
    # The listener's /health and /metrics (0: none).
    health_port: int = Field(default=9466, ge=0, le=65535)
    # TLS for MLLP: a PEM certificate chain and key; with a CA file, clients must present a
    # certificate it signed (mutual TLS).
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_client_ca_file: str | None = None
    # What our ACKs name as their sender (MSH-3/MSH-4).
    receiving_application: str = "EHR"
    receiving_facility: str = "EHR"
    # A message whose conversion keeps conflicting is a dead letter after this many attempts
    # (HAPI being unavailable is retried until it is back: the message is not at fault).
    convert_max_attempts: int = Field(default=5, ge=1, le=50)
    # Outbound (ORU/ADT to destinations): connect and ACK timeouts, attempts before a message is
    # parked, the retry backoff (uniform in [c/2, c], c = min(max, base·2^attempt)), and the CA
    # file that destinations' TLS certificates are checked against (default: the system's).
    outbound_connect_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    outbound_ack_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    outbound_max_attempts: int = Field(default=10, ge=1, le=1000)
    outbound_retry_base_seconds: float = Field(default=5.0, gt=0, le=3600)
    outbound_retry_max_seconds: float = Field(default=600.0, gt=0, le=86400)
    outbound_tls_ca_file: str | None = None
    # Converted/rejected inbound and delivered outbound message bodies are deleted after this
    # many days (daily hl7v2.prune); waiting, dead and parked ones are kept.
    retention_days: int = Field(default=90, ge=1, le=36500)


class PharmacySettings(BaseModel):
    """Pharmacy stock (ehr.modules.pharmacy; ADR 0034)."""

    # Lots with stock expiring within this many days raise medication.lot_near_expiry (daily).
    near_expiry_days: int = Field(default=90, ge=1, le=3650)
    # A pharmacist's claim on an order in the verification queue lapses after this long.
    claim_minutes: int = Field(default=15, ge=1, le=480)


class Settings(BaseSettings):
    """The service's settings; one object, nested by concern."""

    model_config = SettingsConfigDict(
        env_prefix="EHR_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Environment = Environment.DEVELOPMENT
    api: ApiSettings = Field(default_factory=ApiSettings)
    fhir: FhirSettings = Field(default_factory=FhirSettings)
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    ready: ReadinessSettings = Field(default_factory=ReadinessSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    events: EventsSettings = Field(default_factory=EventsSettings)
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)
    webhooks: WebhooksSettings = Field(default_factory=WebhooksSettings)
    fhir_changes: FhirChangesSettings = Field(default_factory=FhirChangesSettings)
    medication_safety: MedicationSafetySettings = Field(default_factory=MedicationSafetySettings)
    cds_hooks: CdsHooksSettings = Field(default_factory=CdsHooksSettings)
    smart: SmartSettings = Field(default_factory=SmartSettings)
    hl7: Hl7Settings = Field(default_factory=Hl7Settings)
    pharmacy: PharmacySettings = Field(default_factory=PharmacySettings)

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.env is Environment.DEVELOPMENT:
            return self
        if self.security.secret_key.get_secret_value() == DEV_SECRET_KEY:
            raise InsecureDefaultSecretError(
                "EHR_SECURITY__SECRET_KEY still has its development default; "
                f"set a real secret for EHR_ENV={self.env.value}"
            )
        if DEV_DB_PASSWORD in self.db.url.get_secret_value():
            raise InsecureDefaultSecretError(
                "EHR_DB__URL still uses the development database password; "
                f"set real credentials for EHR_ENV={self.env.value}"
            )
        if any(k.get_secret_value() == DEV_ENCRYPTION_KEY for k in self.auth.encryption_keys):
            raise InsecureDefaultSecretError(
                "EHR_AUTH__ENCRYPTION_KEYS still holds the development key; "
                f"set real keys for EHR_ENV={self.env.value}"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once from the environment (the app factory may also be given its own)."""
    return Settings()


class SettingsError(SystemExit):
    """Invalid configuration: exits the process with a one-line message (no traceback)."""


def describe_settings_error(error: ValidationError) -> str:
    """One line naming each failing setting, e.g. ``EHR_SECURITY__SECRET_KEY still has ...``."""
    parts: list[str] = []
    for item in error.errors(include_url=False, include_input=False):
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, ValueError) and not item.get("loc"):
            # A model-level check (e.g. default secrets): its message already names the setting.
            parts.append(str(cause))
            continue
        name = "EHR_" + "__".join(str(part).upper() for part in item.get("loc", ()))
        parts.append(f"{name}: {item.get('msg', 'invalid value')}")
    return "; ".join(parts).replace("\n", " ")


def load_settings() -> Settings:
    """Settings from the environment, or exit with a one-line message naming the bad setting."""
    try:
        return get_settings()
    except ValidationError as exc:
        raise SettingsError(f"ehr: invalid configuration: {describe_settings_error(exc)}") from None
