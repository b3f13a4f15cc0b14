"""A client's public keys (CDS Hooks clients, SMART Backend Services clients): which JWKs can
verify the JWTs it signs (public EC/RSA signing keys).

Only public EC/RSA keys are ever used: ``oct`` keys and keys with private members are refused, so
an HMAC "signed with the public key" cannot verify. ES256 = EC P-256, ES384 = P-384, ES512 =
P-521, RS*/PS* = RSA of at least 2048 bits.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final

from jose import jwk

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "MAX_KID_LENGTH",
    "b64_decode",
    "b64_int",
    "jwk_problem",
    "usable_keys",
]

MAX_KID_LENGTH: Final = 256
_MIN_RSA_BITS: Final = 2048

# alg → (kty, crv or None). Nothing symmetric is, or can be, in here.
ASYMMETRIC_ALGORITHMS: Final[Mapping[str, tuple[str, str | None]]] = {
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
}
# JWK members that only a private (or symmetric) key has.
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_CURVES: Final = frozenset({"P-256", "P-384", "P-521"})


def jwk_problem(key: object) -> str | None:
    """Why ``key`` cannot be a client's signing key (None: a usable public EC/RSA key)."""
    if not isinstance(key, Mapping):
        return "a key is not a JSON object"
    kty = key.get("kty")
    if kty not in ("EC", "RSA"):
        return f"key type {kty!r} is not accepted (public EC or RSA keys only)"
    if any(member in key for member in _PRIVATE_MEMBERS):
        return "a key carries private key material"
    kid = key.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
        return "every key needs a 'kid'"
    use = key.get("use")
    if use is not None and use != "sig":
        return f"key {kid!r} is not a signing key (use={use!r})"
    ops = key.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return f"key {kid!r} is not for verifying ('key_ops')"
    alg = key.get("alg")
    if alg is not None:
        expected = ASYMMETRIC_ALGORITHMS.get(alg) if isinstance(alg, str) else None
        if expected is None or expected[0] != kty:
            return f"key {kid!r} names an algorithm that does not fit it ({alg!r})"
        if expected[1] is not None and key.get("crv") != expected[1]:
            return f"key {kid!r}: algorithm {alg} needs curve {expected[1]}"
    if kty == "EC":
        if key.get("crv") not in _CURVES:
            return f"key {kid!r}: curve {key.get('crv')!r} is not accepted"
        if not isinstance(key.get("x"), str) or not isinstance(key.get("y"), str):
            return f"key {kid!r}: an EC key needs 'x' and 'y'"
    else:
        n, e = key.get("n"), key.get("e")
        if not isinstance(n, str) or not isinstance(e, str):
            return f"key {kid!r}: an RSA key needs 'n' and 'e'"
        try:
            bits = b64_int(n).bit_length()
        except ValueError:
            return f"key {kid!r}: 'n' is not base64url"
        if bits < _MIN_RSA_BITS:
            return f"key {kid!r}: RSA keys need at least {_MIN_RSA_BITS} bits"
    try:
        jwk.construct(dict(key), "ES256" if kty == "EC" else "RS256")
    except Exception:  # noqa: BLE001 - any failure of the key parser means "unusable"
        return f"key {kid!r} cannot be parsed"
    return None


def usable_keys(jwks: object) -> tuple[dict[str, Any], ...]:
    """The public EC/RSA signing keys of a JWKS document (others are ignored)."""
    if not isinstance(jwks, Mapping):
        return ()
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return ()
    return tuple(dict(key) for key in keys if jwk_problem(key) is None)


def b64_decode(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def b64_int(segment: str) -> int:
    return int.from_bytes(b64_decode(segment), "big")
