"""The loopback guard: kugeldrill sends traffic only to 127.0.0.0/8 and ::1.

A drill cuts links and floods services, so pointing it at a shared or production host
by mistake is the worst failure this toolkit can have. Every URL or host:port the
toolkit is about to use passes through `require_loopback`, which refuses anything else
unless the user's target file lists the host under `allow_hosts` explicitly.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from kugeldrill.ground.errors import NotLoopbackError

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def split_host(address: str) -> str:
    """Return the host part of a URL (`http://h:p/x`, `redis://h:p/0`) or `host:port`."""
    if "://" in address:
        host = urlsplit(address).hostname
        if not host:
            raise NotLoopbackError(f"cannot find a host in address {address!r}")
        return host
    if address.startswith("["):  # [::1]:8474
        return address[1 : address.index("]")]
    if address.count(":") == 1:
        return address.rsplit(":", 1)[0]
    return address


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the usual names for them (resolved without DNS)."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_loopback(address: str, *, allow_hosts: Iterable[str] = (), what: str = "address") -> str:
    """Return `address` unchanged if its host is loopback or explicitly allowed.

    `what` names the thing in the error ("Toxiproxy API", "upstream of link redis@cart").
    """
    host = split_host(address)
    allowed = {h.lower() for h in allow_hosts}
    if is_loopback_host(host) or host.lower() in allowed:
        return address
    raise NotLoopbackError(
        f"refusing {what} {address!r}: host {host!r} is not loopback (127.0.0.0/8, ::1)",
        hint="kugeldrill only drills local stacks; to drill another host, list it under "
        "'allow_hosts' in your target file",
    )


def resolve_is_loopback(host: str) -> bool:
    """Resolve a name and check every address is loopback (used for target checks)."""
    if is_loopback_host(host):
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)
