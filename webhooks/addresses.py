"""Where a webhook may go: the guard against server-side request forgery.

A webhook URL is the integrator's choice, so without a guard it could make this server call its own
admin ports, the cloud's metadata service (169.254.169.254) or the office network. The rules:

- `https` only; `http` only when every address the host resolves to is allow-listed (a test receiver,
  a sidecar on the same machine).
- Every address the host resolves to must be public: not loopback, private (10/8, 172.16/12,
  192.168/16, fc00::/7), link-local (169.254/16 with the metadata service, fe80::/10), shared
  (CGNAT 100.64/10), unspecified, multicast, reserved or documentation ranges, and the same for an
  IPv4 address inside IPv6 (::ffff:a.b.c.d, 6to4, NAT64). An address in `WEBHOOK_ALLOWED_HOSTS`
  (IPs or CIDR networks) is let through anyway.
- Checked when the endpoint is registered or changed, and again before every call (a name may resolve
  elsewhere later: DNS rebinding). The call then connects to the very address that was checked (no
  second lookup), and redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT_SECONDS = 5.0
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class AddressRefused(ValueError):
    """The URL may not be called; the message says why, for the admin or the delivery log."""


@dataclass(frozen=True)
class AllowList:
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """From `WEBHOOK_ALLOWED_HOSTS` entries: IP addresses or CIDR networks (ValueError otherwise)."""
        networks: list[IPNetwork] = []
        for entry in entries:
            text = entry.strip().removeprefix("[").removesuffix("]")
            if text:
                networks.append(ipaddress.ip_network(text, strict=False))
        return cls(tuple(networks))

    def allows(self, address: IPAddress) -> bool:
        return any(address.version == n.version and address in n for n in self.networks)


@dataclass(frozen=True)
class Target:
    """A URL that passed the guard, with the addresses to connect to (the checked ones)."""

    scheme: str
    host: str  # as written in the URL (a name or an address), for the Host header and TLS
    port: int
    addresses: tuple[IPAddress, ...]


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.teredo is not None:
        return address.teredo[1]
    return None


def why_not_public(address: IPAddress) -> str | None:
    """Why `address` is not a public one a webhook may reach, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            reason = why_not_public(inner)
            if reason is not None:
                return f"{reason} (inside the IPv6 address {address})"
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local (cloud metadata)"),
        (address.is_private, "private"),
        (address.is_multicast, "multicast"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not a public address"),
    )
    for refused, what in checks:
        if refused:
            return f"{address} is {what}"
    return None


def parse_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a well-formed webhook URL; AddressRefused says what is wrong."""
    if len(url) > MAX_URL_LENGTH:
        raise AddressRefused(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise AddressRefused("The URL contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise AddressRefused(f"Not a valid URL: {exc}.") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise AddressRefused("The URL must start with https://.")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("The URL may not contain a user name or password.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise AddressRefused("The URL has no host.")
    if parts.fragment:
        raise AddressRefused("The URL may not contain a fragment (#...).")
    return scheme, host, port or (443 if scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (itself when it is an address)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise AddressRefused(f"The host {host} does not resolve ({exc}).") from exc
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise AddressRefused(f"The host {host} does not resolve.")
    return found


async def check_url(url: str, allow: AllowList) -> Target:
    """The URL's target when it may be called now; AddressRefused otherwise. Every address the host
    resolves to must pass, so a name with one private address among public ones is refused."""
    scheme, host, port = parse_url(url)
    addresses = await resolve(host, port)
    for address in addresses:
        if allow.allows(address):
            continue
        reason = why_not_public(address)
        if reason is not None:
            raise AddressRefused(
                f"Refused: {host} resolves to {reason}; only public addresses may receive webhooks "
                "(or those in WEBHOOK_ALLOWED_HOSTS)."
            )
    if scheme == "http" and not all(allow.allows(a) for a in addresses):
        raise AddressRefused("The URL must use https:// (http only for hosts in WEBHOOK_ALLOWED_HOSTS).")
    return Target(scheme=scheme, host=host, port=port, addresses=tuple(addresses))
