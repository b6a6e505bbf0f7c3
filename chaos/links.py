"""Named links: the Toxiproxy proxies a drill can cut, and selectors that address them.

A link is one network hop of the stack, named `<kind>@<app>` (contracts §1):
`redis@cart` (cart's sidecar → Redis), `sidecar@cart` (cart → its sidecar),
`app@journal` (journal's sidecar → journal); on the native Kugelpos also `mongo@cart`
(cart → MongoDB) and `http@report>cart` (report's calls to cart: caller > callee). Each link is one Toxiproxy proxy named
`kugeldrill.<link>`; one proxy per link because Toxiproxy toxics cannot target one
client among many on a shared proxy (Toxiproxy #244).

Every listen and upstream address is checked against the loopback guard when a
LinkMap is built, so a fault can never be aimed at a host the target did not allow.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kugeldrill.chaos.toxiproxy import Proxy, ToxiproxyClient
from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.netguard import require_loopback

PREFIX = "kugeldrill."
KNOWN_KINDS = ("redis", "sidecar", "app", "mongo", "http")
# `<kind>@<app>`; an HTTP link between services names caller and callee: `http@cart>terminal`.
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*@[a-z0-9][a-z0-9_.-]*(?:>[a-z0-9][a-z0-9_.-]*)?$")
_PATTERN_RE = re.compile(r"^[a-z0-9_*-]+@[a-z0-9_.*-]+(?:>[a-z0-9_.*-]+)?$|^\*$")


def proxy_name(link: str) -> str:
    """Toxiproxy proxy name of a link: `redis@cart` → `kugeldrill.redis@cart`."""
    return PREFIX + link


def link_name(proxy: str) -> str:
    """Inverse of proxy_name; a proxy without our prefix is not ours (ConfigError)."""
    if not proxy.startswith(PREFIX):
        raise ConfigError(f"proxy {proxy!r} is not a kugeldrill link (name must start with {PREFIX!r})")
    return proxy[len(PREFIX):]


def _check_address(value: Any, what: str) -> str:
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(f"{what} must be 'host:port', got {value!r}")
    port = value.rsplit(":", 1)[1]
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{what} has no valid port: {value!r}")
    return value


@dataclass(frozen=True)
class Link:
    """One hop: clients connect to `listen`, Toxiproxy forwards to `upstream`."""

    name: str
    listen: str
    upstream: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ConfigError(
                f"link name {self.name!r} must look like '<kind>@<app>' (e.g. redis@cart, sidecar@cart, app@journal)"
            )
        _check_address(self.listen, f"listen of link {self.name}")
        _check_address(self.upstream, f"upstream of link {self.name}")

    @property
    def kind(self) -> str:
        return self.name.split("@", 1)[0]

    @property
    def app(self) -> str:
        return self.name.split("@", 1)[1]

    @property
    def proxy(self) -> str:
        return proxy_name(self.name)

    def check_loopback(self, allow_hosts: Iterable[str] = ()) -> None:
        """NotLoopbackError naming this link if listen or upstream leaves loopback."""
        allow = tuple(allow_hosts)
        require_loopback(self.upstream, allow_hosts=allow, what=f"upstream of link {self.name}")
        require_loopback(self.listen, allow_hosts=allow, what=f"listen address of link {self.name}")

    def to_state(self) -> dict[str, str]:
        """The stack.json form (contracts §2)."""
        return {"proxy": self.proxy, "listen": self.listen, "upstream": self.upstream}

    def to_populate(self, enabled: bool = True) -> dict[str, Any]:
        return {"name": self.proxy, "listen": self.listen, "upstream": self.upstream, "enabled": enabled}


class LinkMap:
    """The links of one stack or target, in declaration order, addressable by selector."""

    def __init__(self, links: Iterable[Link], *, allow_hosts: Iterable[str] = ()) -> None:
        self.allow_hosts = tuple(allow_hosts)
        self._links: dict[str, Link] = {}
        for link in links:
            if link.name in self._links:
                raise ConfigError(f"link {link.name!r} is declared twice")
            link.check_loopback(self.allow_hosts)
            self._links[link.name] = link

    # -- construction

    @classmethod
    def from_state(cls, links: Mapping[str, Mapping[str, Any]], *, allow_hosts: Iterable[str] = ()) -> "LinkMap":
        """From the `links` section of stack.json: {name: {proxy?, listen, upstream}}."""
        if not isinstance(links, Mapping):
            raise ConfigError(f"links must be a mapping of link name to {{listen, upstream}}, got {type(links).__name__}")
        out = []
        for name, entry in links.items():
            if not isinstance(entry, Mapping):
                raise ConfigError(f"links.{name} must be a mapping with listen and upstream")
            for key in ("listen", "upstream"):
                if key not in entry:
                    raise ConfigError(f"links.{name}.{key} is missing")
            if "proxy" in entry and entry["proxy"] != proxy_name(str(name)):
                raise ConfigError(f"links.{name}.proxy must be {proxy_name(str(name))!r}, got {entry['proxy']!r}")
            out.append(Link(str(name), str(entry["listen"]), str(entry["upstream"])))
        return cls(out, allow_hosts=allow_hosts)

    @classmethod
    def from_state_file(cls, path: str | Path, *, allow_hosts: Iterable[str] = ()) -> "LinkMap":
        """From a stack.json file (its `links` section)."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"state file {path} does not exist") from exc
        except ValueError as exc:
            raise ConfigError(f"state file {path} is not valid JSON: {exc}") from exc
        if "links" not in data:
            raise ConfigError(f"state file {path} has no 'links' section")
        return cls.from_state(data["links"], allow_hosts=allow_hosts)

    # -- Toxiproxy

    def ensure(self, client: ToxiproxyClient, *, enable: bool = True) -> "LinkMap":
        """Create missing proxies via server-side /populate and return the resolved map.

        Populate leaves an unchanged existing proxy alone, including a `disabled` flag
        left behind by an interrupted drill, so with `enable` every proxy is switched on.
        Listen port 0 is resolved by the server; the returned map carries real ports.
        """
        made = client.populate([link.to_populate() for link in self])
        by_name: dict[str, Proxy] = {p.name: p for p in made}
        resolved = []
        for link in self:
            proxy = by_name.get(link.proxy) or client.get_proxy(link.proxy)
            if enable and not proxy.enabled:
                proxy = client.update_proxy(link.proxy, enabled=True)
            resolved.append(Link(link.name, proxy.listen or link.listen, link.upstream))
        return LinkMap(resolved, allow_hosts=self.allow_hosts)

    # -- selection

    def select(self, selector: str) -> list[Link]:
        """Links matching a selector: `redis@cart`, `redis@*`, `*@journal`, `*`, or a comma list.

        Every comma part must match at least one link, so a typo fails loudly instead of
        silently drilling nothing. Result is in declaration order without duplicates.
        """
        if not isinstance(selector, str) or not selector.strip():
            raise ConfigError(f"link selector must be a non-empty string, got {selector!r}")
        chosen: set[str] = set()
        for part in (p.strip() for p in selector.split(",")):
            if not part:
                raise ConfigError(f"link selector {selector!r} has an empty entry")
            if not _PATTERN_RE.match(part):
                raise ConfigError(
                    f"link selector part {part!r} must look like '<kind>@<app>' with optional '*' "
                    f"(e.g. redis@cart, redis@*, *@journal)"
                )
            hits = [name for name in self._links if fnmatch.fnmatchcase(name, part)]
            if not hits:
                known = ", ".join(self._links) or "none"
                raise ConfigError(f"link selector {part!r} matches no link (known links: {known})")
            chosen.update(hits)
        return [link for name, link in self._links.items() if name in chosen]

    # -- container protocol

    def __iter__(self) -> Iterator[Link]:
        return iter(self._links.values())

    def __len__(self) -> int:
        return len(self._links)

    def __contains__(self, name: object) -> bool:
        return name in self._links

    def __getitem__(self, name: str) -> Link:
        try:
            return self._links[name]
        except KeyError:
            raise ConfigError(f"no link named {name!r} (known links: {', '.join(self._links) or 'none'})") from None

    @property
    def names(self) -> list[str]:
        return list(self._links)

    @property
    def proxies(self) -> list[str]:
        return [link.proxy for link in self]

    def to_state(self) -> dict[str, dict[str, str]]:
        return {link.name: link.to_state() for link in self}
