"""Signed checkpoints over every shard chain of a tenant, and the verification of the whole trail.

The chains (:mod:`ehr.platform.audit.chain`) detect an edited, removed or reordered record, but
not the removal of a chain's NEWEST records, of a whole shard, or a chain rewritten
consistently. A checkpoint closes that, the way transparency logs do: it states the head
``(seq, record_hash)`` of every shard of a tenant at one moment and is signed, so a later chain
must still contain each named record with that hash.

- **Document.** ``ehr.audit.checkpoint.v1\\n`` + canonical JSON of ``tenant``, ``seq`` (1, 2,
  3, ... per tenant), ``created_at``, ``heads`` (``{"<shard>": [seq, record_hash]}``) and
  ``prev_hash`` (SHA-256 of the previous checkpoint's document; the first: 64 zeros). The prefix
  is domain separation: the document can never be the signing input of a JWS, so a checkpoint
  signature is never an access token and no token is a checkpoint.
- **Signature.** ES256 with the platform's current signing key (the one that signs tokens,
  :func:`ehr.platform.auth.signing_keys.ensure_signing_key`), raw ``r||s`` in base64url (the
  JWS encoding: verifiable with the published JWK). ``verify`` takes the public key from the
  DECRYPTED private key, not from the stored JWK: a signing key inserted by someone with
  database access alone (without ``settings.auth.encryption_keys``) verifies nothing.
- **Writing.** :func:`write_checkpoints` (``ehr audit checkpoint``) and :func:`run_checkpoints`
  (the app's background task, every :data:`CHECKPOINT_INTERVAL_SECONDS`; a replica that cannot
  take the writer lock skips the round) write one checkpoint per tenant whose heads moved.
- **Verifying.** :func:`verify_trail` (``ehr audit verify``): per tenant, the checkpoints
  (numbering, ``prev_hash`` links, signatures), then every shard chain with the records the
  checkpoints name pinned: a missing or different pinned record is a break naming tenant,
  shard, seq and the checkpoint.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ehr.core.config import Settings
from ehr.core.db.models import AuditCheckpoint, SigningKey
from ehr.platform.audit.chain import (
    GENESIS_HASH,
    ChainBreak,
    ChainKey,
    Head,
    Pin,
    VerificationResult,
    chain_heads,
    format_timestamp,
    verify_chains,
)
from ehr.platform.auth.crypto import SecretDecryptionFailed, decrypt
from ehr.platform.auth.signing_keys import ensure_signing_key

__all__ = [
    "CHECKPOINT_INTERVAL_SECONDS",
    "checkpoint_digest",
    "checkpoint_document",
    "run_checkpoints",
    "sign_document",
    "signature_valid",
    "verify_trail",
    "write_checkpoints",
]

logger = structlog.get_logger(__name__)

CHECKPOINT_INTERVAL_SECONDS: Final = 60.0
_DOMAIN: Final = b"ehr.audit.checkpoint.v1\n"
# Checkpoint writers (background task of each replica, the CLI) take this transaction lock.
_WRITER_LOCK: Final = "ehr.platform.audit:checkpoint-writer"


def _encode_heads(heads: Mapping[int, Head]) -> dict[str, list[Any]]:
    return {str(shard): [int(seq), str(digest)] for shard, (seq, digest) in sorted(heads.items())}


def checkpoint_document(
    *,
    tenant: str,
    seq: int,
    created_at: datetime,
    heads: Mapping[str, Any],
    prev_hash: str,
) -> bytes:
    """The bytes a checkpoint signs (domain prefix + canonical JSON)."""
    document = {
        "tenant": tenant,
        "seq": seq,
        "created_at": format_timestamp(created_at),
        "heads": {str(k): [int(v[0]), str(v[1])] for k, v in heads.items()},
        "prev_hash": prev_hash,
    }
    return _DOMAIN + json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _document_of(checkpoint: AuditCheckpoint) -> bytes:
    return checkpoint_document(
        tenant=checkpoint.tenant,
        seq=checkpoint.seq,
        created_at=checkpoint.created_at,
        heads=checkpoint.heads,
        prev_hash=checkpoint.prev_hash,
    )


def checkpoint_digest(checkpoint: AuditCheckpoint) -> str:
    """SHA-256 of the checkpoint's document: the next checkpoint's ``prev_hash``."""
    return hashlib.sha256(_document_of(checkpoint)).hexdigest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def sign_document(private_pem: bytes, document: bytes) -> str:
    """ES256 signature of ``document``: raw ``r||s`` (32 + 32 bytes), base64url."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError("the signing key is not an EC key")
    r, s = decode_dss_signature(key.sign(document, ec.ECDSA(hashes.SHA256())))
    return _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def signature_valid(public: ec.EllipticCurvePublicKey, document: bytes, signature: str) -> bool:
    """Whether ``signature`` (raw r||s, base64url) is ``public``'s ES256 signature of
    ``document``."""
    try:
        raw = _unb64url(signature)
    except (ValueError, TypeError):
        return False
    if len(raw) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, document, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


async def _latest_checkpoints(session: AsyncSession) -> dict[str, AuditCheckpoint]:
    rows = await session.scalars(
        select(AuditCheckpoint)
        .ext(distinct_on(AuditCheckpoint.tenant))
        .order_by(AuditCheckpoint.tenant, AuditCheckpoint.seq.desc())
    )
    return {row.tenant: row for row in rows}


async def _signing_key(session: AsyncSession, settings: Settings) -> tuple[str, bytes]:
    """(kid, private PEM) of the platform's current signing key, read in THIS session.

    Not through the per-process token-signing cache: a checkpoint is written once a minute, and
    the key must come from the database the checkpoint goes to.
    """
    kid = await ensure_signing_key(session, settings)
    row = await session.get(SigningKey, kid)
    if row is None:  # pragma: no cover - just selected or created in this transaction
        raise RuntimeError("signing key vanished")
    return kid, decrypt(settings, row.private_key_encrypted)


async def write_checkpoints(
    session: AsyncSession,
    settings: Settings,
    *,
    tenant: str | None = None,
    min_age: timedelta = timedelta(0),
    wait: bool = True,
) -> list[AuditCheckpoint] | None:
    """Write a checkpoint for every tenant (or ``tenant``) whose heads moved since its last one.

    Skips tenants whose last checkpoint is younger than ``min_age``. Checkpoint writers take one
    transaction lock (held until the caller commits), so heads never go backwards between two
    checkpoints; with ``wait=False`` another writer holding it makes this return None (nothing
    done). Flushes; the caller commits.
    """
    lock = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    taken = await session.scalar(
        text(f"SELECT {lock}(hashtextextended(:key, 0))::text"), {"key": _WRITER_LOCK}
    )
    if not wait and taken != "true":
        return None
    heads: dict[str, dict[int, Head]] = {}
    for (name, shard), head in (await chain_heads(session, tenant)).items():
        heads.setdefault(name, {})[shard] = head
    latest = await _latest_checkpoints(session)
    now = datetime.now(UTC)
    key: tuple[str, bytes] | None = None
    written: list[AuditCheckpoint] = []
    for name, shard_heads in sorted(heads.items()):
        encoded = _encode_heads(shard_heads)
        last = latest.get(name)
        if last is not None and (last.heads == encoded or now - last.created_at < min_age):
            continue
        if key is None:
            key = await _signing_key(session, settings)
        checkpoint = AuditCheckpoint(
            tenant=name,
            seq=last.seq + 1 if last is not None else 1,
            created_at=now,
            heads=encoded,
            prev_hash=checkpoint_digest(last) if last is not None else GENESIS_HASH,
            key_id=key[0],
        )
        checkpoint.signature = sign_document(key[1], _document_of(checkpoint))
        session.add(checkpoint)
        written.append(checkpoint)
    await session.flush()
    if written:
        logger.info("audit.checkpoint.written", tenants=len(written))
    return written


async def run_checkpoints(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    stop: asyncio.Event,
    *,
    interval_seconds: float = CHECKPOINT_INTERVAL_SECONDS,
) -> None:
    """Write checkpoints every ``interval_seconds`` until ``stop`` is set (the app's lifespan).

    Start it as a task in the lifespan and, on shutdown, set ``stop`` and await the task (it
    returns at once, or after the round in progress). Every replica runs it; a round that finds
    another replica writing is skipped, and a tenant checkpointed less than half an interval ago
    (by any replica) waits for the next round, so the replicas together write about one
    checkpoint per tenant per interval. A failed round is logged and the next one tries again.
    """
    min_age = timedelta(seconds=interval_seconds / 2)
    while True:
        # First wait, then write: an app that starts and stops at once (a test) adds no work.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
        if stop.is_set():
            return
        try:
            async with sessionmaker() as session, session.begin():
                await write_checkpoints(session, settings, min_age=min_age, wait=False)
        except Exception as exc:  # noqa: BLE001 - the next round retries; the app keeps serving
            logger.warning("audit.checkpoint.failed", error=type(exc).__name__)


class _Keys:
    """Public keys by kid, derived from the decrypted private keys (see the module doc)."""

    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self._session = session
        self._settings = settings
        self._keys: dict[str, ec.EllipticCurvePublicKey | str] = {}

    async def get(self, kid: str) -> ec.EllipticCurvePublicKey | str:
        """The public key, or the problem (``checkpoint_key_unknown``/``_unusable``)."""
        if kid not in self._keys:
            self._keys[kid] = await self._load(kid)
        return self._keys[kid]

    async def _load(self, kid: str) -> ec.EllipticCurvePublicKey | str:
        row = await self._session.get(SigningKey, kid)
        if row is None:
            return "checkpoint_key_unknown"
        try:
            pem = decrypt(self._settings, row.private_key_encrypted)
            private = serialization.load_pem_private_key(pem, password=None)
        except (SecretDecryptionFailed, ValueError, TypeError):
            return "checkpoint_key_unusable"
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            return "checkpoint_key_unusable"
        return private.public_key()


def _checkpoint_break(
    checkpoint: AuditCheckpoint, problem: str, expected: str | None = None, found: str | None = None
) -> ChainBreak:
    return ChainBreak(
        checkpoint.tenant,
        None,
        None,
        problem,
        expected,
        found,
        shard=None,
        checkpoint=checkpoint.seq,
    )


async def _verify_checkpoints(
    session: AsyncSession, keys: _Keys, tenant: str
) -> tuple[ChainBreak | None, dict[ChainKey, dict[int, Pin]], int]:
    """The tenant's checkpoints in order: the first break, the records they pin, the count."""
    pins: dict[ChainKey, dict[int, Pin]] = {}
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    stream = await session.stream_scalars(
        select(AuditCheckpoint)
        .where(AuditCheckpoint.tenant == tenant)
        .order_by(AuditCheckpoint.seq)
        .execution_options(yield_per=500)
    )
    async for checkpoint in stream:
        count += 1
        broken = await _check_one(keys, checkpoint, expected_seq, prev_hash)
        if broken is None:
            broken = _pin(pins, checkpoint)
        if broken is not None:
            await stream.close()
            return broken, pins, count
        expected_seq, prev_hash = checkpoint.seq + 1, checkpoint_digest(checkpoint)
        session.expunge(checkpoint)
    return None, pins, count


async def _check_one(
    keys: _Keys, checkpoint: AuditCheckpoint, expected_seq: int, prev_hash: str
) -> ChainBreak | None:
    if checkpoint.seq != expected_seq:
        return _checkpoint_break(
            checkpoint, "checkpoint_seq_gap", str(expected_seq), str(checkpoint.seq)
        )
    if checkpoint.prev_hash != prev_hash:
        return _checkpoint_break(
            checkpoint, "checkpoint_prev_hash_mismatch", prev_hash, checkpoint.prev_hash
        )
    key = await keys.get(checkpoint.key_id)
    if isinstance(key, str):
        return _checkpoint_break(checkpoint, key, None, None)
    if not signature_valid(key, _document_of(checkpoint), checkpoint.signature):
        return _checkpoint_break(checkpoint, "checkpoint_signature_invalid")
    return None


def _pin(pins: dict[ChainKey, dict[int, Pin]], checkpoint: AuditCheckpoint) -> ChainBreak | None:
    for shard_text, (seq, digest) in checkpoint.heads.items():
        shard_pins = pins.setdefault((checkpoint.tenant, int(shard_text)), {})
        earlier = shard_pins.get(int(seq))
        if earlier is not None and earlier[0] != digest:
            # Two signed checkpoints disagree about one record: the signed history forked.
            return ChainBreak(
                checkpoint.tenant,
                int(seq),
                None,
                "checkpoint_conflict",
                earlier[0],
                str(digest),
                shard=int(shard_text),
                checkpoint=checkpoint.seq,
            )
        shard_pins.setdefault(int(seq), (str(digest), checkpoint.seq))
    return None


async def verify_trail(
    session: AsyncSession,
    settings: Settings,
    tenant: str | None = None,
    *,
    batch_size: int = 1000,
) -> VerificationResult:
    """Verify every checkpoint and every shard chain of ``tenant`` (or of every tenant).

    Tenant by tenant: the checkpoints first (numbering, links, signatures), then each shard chain
    with the records the checkpoints named pinned (so a removed or replaced record after a
    checkpoint is found). The first break ends the run. Run it in one transaction (a consistent
    snapshot).
    """
    heads = await chain_heads(session, tenant)
    query = select(AuditCheckpoint.tenant).distinct()
    if tenant is not None:
        query = query.where(AuditCheckpoint.tenant == tenant)
    checkpointed = set(await session.scalars(query))
    tenants = sorted({name for name, _ in heads} | checkpointed)
    keys = _Keys(session, settings)
    records = checkpoints = 0
    verified_heads: dict[ChainKey, Head] = {}
    for name in tenants:
        broken, pins, count = await _verify_checkpoints(session, keys, name)
        checkpoints += count
        if broken is None:
            chains = sorted({key for key in heads if key[0] == name} | set(pins))
            result = await verify_chains(session, chains, pins=pins, batch_size=batch_size)
            records += result.records_checked
            verified_heads.update(result.heads)
            broken = result.broken
        if broken is not None:
            return VerificationResult(
                ok=False,
                tenants=tuple(tenants),
                records_checked=records,
                broken=broken,
                heads=verified_heads,
                checkpoints_checked=checkpoints,
            )
    return VerificationResult(
        ok=True,
        tenants=tuple(tenants),
        records_checked=records,
        heads=verified_heads,
        checkpoints_checked=checkpoints,
    )
