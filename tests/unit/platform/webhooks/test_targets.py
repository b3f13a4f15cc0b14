"""The SSRF guard: which addresses are refused, URL rules, resolution checks every address."""

from __future__ import annotations

import ipaddress

import pytest

from ehr.platform.webhooks.targets import TargetRefused, check_url, refusal_of, resolve_target


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "link_local"),
        ("169.254.1.1", "link_local"),
        ("fe80::1", "link_local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - the address under test
        ("::", "unspecified"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("192.0.2.1", "private"),
        ("240.0.0.1", "private"),
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    found = refusal_of(ipaddress.ip_address(address))
    assert found is not None
    if reason != "private":
        assert found == reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal_of(ipaddress.ip_address(address)) is None


def test_url_rules() -> None:
    assert check_url("https://hooks.example.com/x", allow_http=False) == (
        "https",
        "hooks.example.com",
        443,
    )
    assert check_url("http://h.example:8080/", allow_http=True) == ("http", "h.example", 8080)
    for bad in (
        "http://h.example/",
        "ftp://h.example/",
        "https://user:pw@h.example/",
        "https:///nohost",
        "https://h.example/#frag",
    ):
        with pytest.raises(TargetRefused):
            check_url(bad, allow_http=False)


async def test_a_literal_private_address_is_refused_unless_allowed() -> None:
    with pytest.raises(TargetRefused) as refused:
        await resolve_target("https://127.0.0.1:8443/x", allow_http=False, allow_private=False)
    assert refused.value.extra["reason"] == "loopback"
    target = await resolve_target("https://127.0.0.1:8443/x", allow_http=False, allow_private=True)
    assert (target.address, target.port, target.host) == ("127.0.0.1", 8443, "127.0.0.1")


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(TargetRefused) as refused:
        await resolve_target("https://localhost/x", allow_http=False, allow_private=False)
    assert refused.value.extra["reason"] == "loopback"


async def test_a_name_with_one_private_address_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    async def fake_getaddrinfo(*_args: object, **_kwargs: object) -> list[tuple[object, ...]]:
        return [
            (2, 1, 6, "", ("93.184.216.34", 443)),
            (2, 1, 6, "", ("10.0.0.5", 443)),
        ]

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(TargetRefused):
        await resolve_target("https://rebind.example/x", allow_http=False, allow_private=False)


async def test_an_unresolvable_host_is_refused_without_a_reason() -> None:
    with pytest.raises(TargetRefused) as refused:
        await resolve_target("https://no-such-host.invalid/", allow_http=False, allow_private=False)
    assert "reason" not in refused.value.extra
