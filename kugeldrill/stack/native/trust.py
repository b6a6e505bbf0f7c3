"""The services' TLS trust setting: a CA directory OpenSSL reads lazily, not a bundle parsed per client.

Kugelpos builds a new `httpx.AsyncClient` for every request that touches Dapr
(`DaprClientHelper.__init__` → `HttpClientHelper.__init__`, e.g. each `TerminalService` and
`TranService`) and for every call to another service. httpx builds an SSL context for each
client even for plain-HTTP URLs, and with neither `SSL_CERT_FILE` nor `SSL_CERT_DIR` set it
parses certifi's bundle (about 140 certificates) every time: 22–28 ms of CPU per client with
OpenSSL 3.0 on the project's 2-core machine, 50–65 % of cart's and terminal's CPU under
Kugelpos' own performance client (see README "Pace"). With `SSL_CERT_DIR` (httpx honours it:
`trust_env`), OpenSSL looks a certificate up by its hash only when it verifies one, and the
context costs 0.1 ms.

Nothing is verified either way: every service of the native runner speaks plain HTTP on
loopback. The trust store stays the system's; only when it is loaded changes. The inherited
`SSL_CERT_FILE` (which httpx would prefer) is not passed on; `--env SSL_CERT_FILE=...` still
wins, since extra settings are applied last.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path

_HASHED = re.compile(r"^[0-9a-f]{8}\.[0-9]+$")


def ca_directory() -> Path | None:
    """The system OpenSSL's CA directory when it holds hashed certificates (`c_rehash` links), else None."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.capath, paths.openssl_capath):
        if not candidate:
            continue
        directory = Path(candidate)
        try:
            if directory.is_dir() and any(_HASHED.match(entry.name) for entry in directory.iterdir()):
                return directory
        except OSError:
            continue
    return None


def lazy_trust_env() -> dict[str, str]:
    """`SSL_CERT_DIR` for a service: the system's lazily read CA directory, or nothing where the
    system has none (the services then pay the bundle's parse per client, as Kugelpos'
    containers do)."""
    directory = ca_directory()
    return {"SSL_CERT_DIR": str(directory)} if directory is not None else {}


def scrubbed_for_trust(env: dict[str, str]) -> list[str]:
    """Inherited variables a service must not see given its variables `env`: the launcher's
    `SSL_CERT_FILE` where `env` points at a CA directory and sets no bundle of its own (httpx
    would prefer the inherited bundle)."""
    return ["SSL_CERT_FILE"] if "SSL_CERT_DIR" in env and "SSL_CERT_FILE" not in env else []
