"""Which addresses an outbound webhook may reach (server-side request forgery protection).

By default only http(s) URLs whose host resolves to public addresses are allowed. Every
address the name resolves to is checked at send time (not only when the URL was saved),
and the request then connects to the checked address itself, so a DNS answer that changes
between the check and the connection cannot point the request somewhere else.
`WEBHOOK_ALLOW_PRIVATE_TARGETS` lifts the address check (on in embedded mode, for
receivers on the same machine or network).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# (network, reason). Order matters only for the reason reported: the narrower ranges come first.
_BLOCKED_NETWORKS: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = [
    (ipaddress.ip_network("169.254.169.254/32"), "metadata"),
    (ipaddress.ip_network("fd00:ec2::254/128"), "metadata"),
    (ipaddress.ip_network("0.0.0.0/8"), "unspecified"),
    (ipaddress.ip_network("10.0.0.0/8"), "private"),
    (ipaddress.ip_network("100.64.0.0/10"), "cgnat"),
    (ipaddress.ip_network("127.0.0.0/8"), "loopback"),
    (ipaddress.ip_network("169.254.0.0/16"), "link_local"),
    (ipaddress.ip_network("172.16.0.0/12"), "private"),
    (ipaddress.ip_network("192.0.0.0/24"), "reserved"),
    (ipaddress.ip_network("192.0.2.0/24"), "reserved"),
    (ipaddress.ip_network("192.88.99.0/24"), "reserved"),
    (ipaddress.ip_network("192.168.0.0/16"), "private"),
    (ipaddress.ip_network("198.18.0.0/15"), "reserved"),
    (ipaddress.ip_network("198.51.100.0/24"), "reserved"),
    (ipaddress.ip_network("203.0.113.0/24"), "reserved"),
    (ipaddress.ip_network("224.0.0.0/4"), "multicast"),
    (ipaddress.ip_network("240.0.0.0/4"), "reserved"),
    (ipaddress.ip_network("::/128"), "unspecified"),
    (ipaddress.ip_network("::1/128"), "loopback"),
    (ipaddress.ip_network("100::/64"), "reserved"),
    (ipaddress.ip_network("2001:db8::/32"), "reserved"),
    (ipaddress.ip_network("fc00::/7"), "private"),
    (ipaddress.ip_network("fe80::/10"), "link_local"),
    (ipaddress.ip_network("fec0::/10"), "private"),
    (ipaddress.ip_network("ff00::/8"), "multicast"),
]


class BlockedTarget(Exception):
    """The URL may not be called: bad scheme, no host, or an address in a blocked range."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4, compatible), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in ipaddress.ip_network("64:ff9b::/96") or address in ipaddress.ip_network("::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_block_reason(address: IPAddress) -> str | None:
    """Why `address` may not be reached (a short code), or None if it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and address != ipaddress.IPv6Address("::"):
            if address == ipaddress.IPv6Address("::1"):
                return "loopback"
            return address_block_reason(embedded)
    for network, reason in _BLOCKED_NETWORKS:
        if address.version == network.version and address in network:
            return reason
    if address.is_multicast:
        return "multicast"
    if not address.is_global:
        return "reserved"
    return None


def _refuse_unsendable_characters(url: str) -> None:
    """Control characters, spaces and other invisible characters cannot go into a request line.

    urlsplit silently drops tab, CR and LF (so `http://host/x\\r\\nX: 1` looked valid) while the HTTP
    client refuses the URL at send time: the URL is refused whole, never cleaned up into another one."""
    for position, char in enumerate(url):
        if char.isspace() or not char.isprintable():
            raise BlockedTarget(
                "invalid_url",
                f"The URL holds a control character, space or invisible character ({char!r} at position {position}).",
            )


# Printable ASCII is kept as given (percent-escapes included); anything else in the path, query and
# fragment is percent-encoded as UTF-8, as browsers send it.
_ASCII_KEPT = "".join(chr(code) for code in range(0x21, 0x7F))


def normalized_url(url: str) -> str:
    """The URL as it is stored and sent: a unicode host IDNA-encoded (UTS 46), other non-ASCII characters
    percent-encoded. Raises BlockedTarget("invalid_url") for what cannot be sent: control characters,
    spaces, a host IDNA refuses, and whatever `url_parts` refuses."""
    _refuse_unsendable_characters(url)
    if url.isascii():
        url_parts(url)
        return url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BlockedTarget("invalid_url", "The URL cannot be parsed.") from None
    host = parts.hostname or ""
    if "@" in parts.netloc or not host:
        url_parts(url)  # raises: credentials, or no host
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise BlockedTarget("invalid_url", "The URL's host is not a valid internationalized name.") from None
    netloc = host if port is None else f"{host}:{port}"
    path, query, fragment = (quote(part, safe=_ASCII_KEPT) for part in (parts.path, parts.query, parts.fragment))
    normalized = urlunsplit((parts.scheme, netloc, path, query, fragment))
    url_parts(normalized)
    return normalized


def url_parts(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; raises BlockedTarget for anything else, including a URL
    `normalized_url` would have had to change (non-ASCII) or refused (control characters, spaces)."""
    _refuse_unsendable_characters(url)
    if not url.isascii():
        raise BlockedTarget("invalid_url", "The URL holds non-ASCII characters; register it again.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BlockedTarget("invalid_url", "The URL cannot be parsed.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BlockedTarget("scheme", "Only http and https URLs can receive webhooks.")
    if not parts.hostname:
        raise BlockedTarget("invalid_url", "The URL has no host.")
    if parts.username or parts.password:
        raise BlockedTarget("invalid_url", "Credentials in the URL are not allowed; use the signing secret.")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    """Every address `host` resolves to (A and AAAA); raises OSError when it does not resolve."""
    literal = _literal_address(host)
    if literal is not None:
        return (literal,)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[IPAddress, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        raw = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        seen[ipaddress.ip_address(raw)] = None
    return tuple(seen)


def check_addresses(host: str, addresses: tuple[IPAddress, ...]) -> None:
    """Raise BlockedTarget if any address is not public (one bad answer blocks the whole name)."""
    for address in addresses:
        reason = address_block_reason(address)
        if reason is not None:
            shown = host if str(address) == host.strip("[]") else f"{host} ({address})"
            raise BlockedTarget(
                reason, f"{shown} is a {reason.replace('_', '-')} address; webhooks go to public addresses only."
            )


def target_for(url: str, *, allow_private: bool) -> Target:
    """Parse, resolve and check `url` for sending. Raises BlockedTarget, or OSError if DNS fails."""
    scheme, host, port = url_parts(url)
    addresses = resolve(host, port)
    if not addresses:
        raise OSError(f"{host} has no addresses")
    if not allow_private:
        check_addresses(host, addresses)
    return Target(scheme=scheme, host=host, port=port, addresses=addresses)


def check_url_for_saving(url: str, *, allow_private: bool) -> None:
    """Refuse a URL that can already be seen to be blocked. A name that does not resolve yet is
    accepted: the check that counts happens again at every send."""
    _scheme, host, port = url_parts(url)
    if allow_private:
        return
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        return
    check_addresses(host, addresses)
