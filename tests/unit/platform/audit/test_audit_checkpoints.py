"""Checkpoint documents and their ES256 signatures (no database)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ehr.platform.audit.chain import GENESIS_HASH
from ehr.platform.audit.checkpoints import checkpoint_document, sign_document, signature_valid

WHEN = datetime(2026, 12, 7, 1, 0, 0, 250000, tzinfo=UTC)
HEADS = {"0": [12, "a" * 64], "5": [3, "b" * 64]}


def _key() -> tuple[bytes, ec.EllipticCurvePublicKey]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, private.public_key()


def _document(**overrides: object) -> bytes:
    values: dict[str, object] = {
        "tenant": "t-one",
        "seq": 1,
        "created_at": WHEN,
        "heads": HEADS,
        "prev_hash": GENESIS_HASH,
    }
    values.update(overrides)
    return checkpoint_document(**values)  # type: ignore[arg-type]


def test_the_document_is_canonical_and_domain_separated() -> None:
    document = _document()
    prefix, _, body = document.partition(b"\n")
    # Never a JWS signing input (base64url "." base64url): a checkpoint signature made with the
    # token key can never pass for a token's, nor a token's for a checkpoint's.
    assert prefix == b"ehr.audit.checkpoint.v1"
    assert json.loads(body) == {
        "created_at": "2026-12-07T01:00:00.250000Z",
        "heads": HEADS,
        "prev_hash": GENESIS_HASH,
        "seq": 1,
        "tenant": "t-one",
    }
    assert _document(heads=dict(reversed(list(HEADS.items())))) == document


def test_a_signature_verifies_and_any_change_breaks_it() -> None:
    pem, public = _key()
    signature = sign_document(pem, _document())
    assert len(base64.urlsafe_b64decode(signature + "==")) == 64  # raw r||s, as in JWS ES256
    assert signature_valid(public, _document(), signature)
    for changed in (
        _document(heads={"0": [11, "a" * 64], "5": [3, "b" * 64]}),
        _document(heads={"0": [12, "a" * 64]}),  # a shard left out
        _document(seq=2),
        _document(tenant="t-two"),
        _document(prev_hash="1" * 64),
    ):
        assert not signature_valid(public, changed, signature)
    _, other_public = _key()
    assert not signature_valid(other_public, _document(), signature)
    assert not signature_valid(public, _document(), "not-base64url!")
    assert not signature_valid(public, _document(), signature[:-4])
