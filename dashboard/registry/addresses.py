"""Where the dashboard may connect to a plant: the rules for a plant's hostname (SSRF defence).

A registrant chooses `factory_hostname` and `factory_port`, and the dashboard later connects there with
stored credentials (rounds, the connectivity check): without rules, registering is a way to make the
dashboard probe its own network or a cloud metadata service. A hostname must be a DNS name or an IP literal;
names are resolved and every address they resolve to is checked:

- always refused: unspecified (0.0.0.0, ::), link-local (169.254/16, fe80::/10: where cloud metadata lives),
  multicast, reserved and broadcast addresses, and cloud metadata services by name or address;
- refused unless DASHBOARD_ALLOW_PRIVATE_PLANTS=true: loopback and every other non-global address (RFC 1918,
  unique-local fc00::/7, shared 100.64/10, ...), which labs, tests and docker compose need.

The check runs when an address is accepted (registration, configured plants) and again before a
connectivity check; a name that later resolves elsewhere (DNS rebinding) is caught at the next check only.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dashboard.errors import AddressRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data",
                            "instance-data.ec2.internal", "metadata.azure.internal"})
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle
    "169.254.170.2",    # AWS ECS task metadata
    "fd00:ec2::254",    # AWS IMDS over IPv6 (a unique-local address: would pass as "private" otherwise)
    "100.100.100.200",  # Alibaba Cloud
))
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# RFC 1123 host names, plus '_' which container runtimes use in service names (docker compose's factory_a)
LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")

Resolver = Callable[[str], Iterable[str]]


def resolve_all(name: str) -> list[str]:
    """Every address `name` resolves to (A and AAAA)."""
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"{name!r} does not resolve ({getattr(exc, 'strerror', None) or exc}): use a name the "
                             "dashboard can resolve, or the plant's IP address") from None
    return sorted({info[4][0] for info in infos})


def parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (::ffff:a.b.c.d, 64:ff9b::a.b.c.d), which is where it leads."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_problem(ip: IPAddress, allow_private: bool) -> str | None:
    """Why a plant may not live at `ip`, or None."""
    ip = _embedded_ipv4(ip)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata service"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_loopback:  # before "reserved": Python counts ::1 in the reserved ::/8
        return None if allow_private else ("loopback (set DASHBOARD_ALLOW_PRIVATE_PLANTS=true for plants on this "
                                           "machine)")
    if ip.is_reserved or ip == ipaddress.IPv4Address("255.255.255.255"):
        return "reserved"
    if allow_private:
        return None
    if not ip.is_global:
        return "private (set DASHBOARD_ALLOW_PRIVATE_PLANTS=true for plants on a private network)"
    return None


def hostname_syntax_problem(hostname: str) -> str | None:
    """Why `hostname` is neither an IP literal nor a valid DNS name, or None."""
    if parse_ip(hostname) is not None:
        return None
    name = hostname[:-1] if hostname.endswith(".") else hostname
    if not name or len(name) > 253:
        return "must be a DNS name of at most 253 characters or an IP address"
    labels = name.lower().split(".")
    bad = next((label for label in labels if not LABEL.fullmatch(label)), None)
    if bad is not None:
        return (f"{hostname!r} is not a valid DNS name (label {bad[:63]!r}: letters, digits, '-' and '_', at most "
                "63 characters, not starting or ending with '-')")
    if labels[-1].isdigit() or labels[-1].startswith("0x"):
        return (f"{hostname!r} is neither an IP address in dotted form nor a DNS name (a top-level label is not "
                "a number)")
    return None


def check_plant_host(hostname: str, allow_private: bool, resolve: Resolver | None = None) -> list[str]:
    """The addresses a plant at `hostname` would be reached at; AddressRefused when any of them, or the name
    itself, is not allowed (every resolved address counts: the connection may use any)."""
    if not isinstance(hostname, str) or not hostname.strip():
        raise AddressRefused("must be a DNS name or an IP address")
    problem = hostname_syntax_problem(hostname)
    if problem:
        raise AddressRefused(problem)
    name = hostname.lower().rstrip(".")
    if name in METADATA_NAMES:
        raise AddressRefused(f"{hostname!r} is a cloud metadata service")
    literal = parse_ip(hostname)
    addresses = [str(literal)] if literal is not None else list((resolve or resolve_all)(name))
    if not addresses:
        raise AddressRefused(f"{hostname!r} resolves to no address")
    for text in addresses:
        ip = parse_ip(text.split("%")[0])  # drop an IPv6 zone index
        if ip is None:
            raise AddressRefused(f"{hostname!r} resolves to {text!r}, which is not an IP address")
        why = address_problem(ip, allow_private)
        if why:
            shown = hostname if literal is not None else f"{hostname!r} resolves to {ip}, which"
            raise AddressRefused(f"{shown} is {why}")
    return addresses


def check_plant_port(port) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise AddressRefused(f"must be a TCP port (1-65535), got {port!r}")
    return port
