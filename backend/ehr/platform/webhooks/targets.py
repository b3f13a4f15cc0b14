"""SSRF guard for webhook targets: which URLs and addresses we send to.

A target's host is resolved and EVERY address it resolves to must be public: loopback,
link-local (169.254/16, fe80::/10, so the cloud metadata address 169.254.169.254 too),
private (RFC 1918, RFC 4193 fc00::/7, CGNAT 100.64/10), multicast, unspecified, reserved and
documentation ranges are refused unless ``allow_private_targets`` is set (tests, on-premise
receivers). The check runs at registration and again before every attempt, and the attempt
connects to the address that was checked (a DNS answer that changes in between — rebinding —
cannot redirect it). Redirects are never followed. ``https`` is required outside development
unless ``allow_http`` is set.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from ehr.core.errors import RequestValidationFailed

__all__ = [
    "ResolvedTarget",
    "TargetRefused",
    "check_url",
    "refusal_of",
    "resolve_target",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services that are not in a link-local range (AWS IPv6, Alibaba).
_METADATA: Final = frozenset(ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200"))
_CGNAT: Final = ipaddress.ip_network("100.64.0.0/10")


class TargetRefused(RequestValidationFailed):
    """The webhook URL or the address its host resolves to is not allowed (SSRF guard)."""

    code = "webhook_target_refused"
    title = "Webhook target not allowed"


def refusal_of(address: IpAddress) -> str | None:
    """Why ``address`` is not a public target (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal_of(address.ipv4_mapped)
    if address in _METADATA:
        return "metadata"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link_local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "private"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


@dataclass(frozen=True)
class ResolvedTarget:
    """A checked target: the URL's parts and the address to connect to."""

    scheme: str
    host: str
    port: int
    address: str


def check_url(url: str, *, allow_http: bool) -> tuple[str, str, int]:
    """Scheme, host and port of an acceptable URL; :class:`TargetRefused` otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise TargetRefused("The webhook URL must be https.")
    if parts.scheme == "http" and not allow_http:
        raise TargetRefused("The webhook URL must be https (http only in development).")
    if parts.username or parts.password:
        raise TargetRefused("The webhook URL must not carry credentials.")
    if parts.fragment:
        raise TargetRefused("The webhook URL must not have a fragment.")
    host = parts.hostname
    if not host:
        raise TargetRefused("The webhook URL has no host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("The webhook URL's port is not a number.") from None
    return parts.scheme, host, port


async def resolve_target(url: str, *, allow_http: bool, allow_private: bool) -> ResolvedTarget:
    """Resolve the URL's host; every address must pass :func:`refusal_of` (unless private
    targets are allowed). The first address is the one to connect to."""
    scheme, host, port = check_url(url, allow_http=allow_http)
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: list[IpAddress] = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise TargetRefused("The webhook URL's host does not resolve.") from None
        addresses = []
        for info in infos:
            candidate = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if candidate not in addresses:
                addresses.append(candidate)
        if not addresses:
            raise TargetRefused("The webhook URL's host does not resolve.")
    if not allow_private:
        for address in addresses:
            reason = refusal_of(address)
            if reason is not None:
                raise TargetRefused(
                    f"The webhook URL's host resolves to a {reason.replace('_', '-')} address.",
                    extra={"reason": reason},
                )
    return ResolvedTarget(scheme=scheme, host=host, port=port, address=str(addresses[0]))
