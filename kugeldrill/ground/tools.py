"""Finding the external programs a drill needs: redis-server and toxiproxy-server.

`make setup` puts toxiproxy into the project's tools/bin when it is not on PATH, so both
places are searched. A missing program is a MissingBinaryError with install advice.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kugeldrill.ground.errors import MissingBinaryError

# The checkout (kugeldrill/ground/tools.py -> two levels up); in an installed wheel, site-packages.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = PROJECT_ROOT / "tools" / "bin"

_ADVICE = {
    "redis-server": "run 'make setup', or 'apt-get install redis-server', 'brew install redis', "
    "or use the container image redis:7",
    "toxiproxy-server": "run 'make setup' (builds it with go install), or download release v2.12.0 "
    "from github.com/Shopify/toxiproxy/releases, or 'brew install toxiproxy'",
    "toxiproxy-cli": "run 'make setup' (builds it with go install)",
}


def find_binary(name: str) -> Path:
    """Absolute path of `name` from tools/bin or PATH, else MissingBinaryError."""
    env_override = os.environ.get(f"KUGELDRILL_{name.upper().replace('-', '_')}")
    if env_override and Path(env_override).exists():
        return Path(env_override)
    local = TOOLS_BIN / name
    if local.exists() and os.access(local, os.X_OK):
        return local
    found = shutil.which(name)
    if found:
        return Path(found)
    raise MissingBinaryError(f"{name} not found on PATH or in {TOOLS_BIN}", hint=_ADVICE.get(name))
