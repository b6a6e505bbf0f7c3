"""Where kugeldrill finds what it does not ship: external programs and its tools folder.

kugeldrill is a Python package; redis-server, toxiproxy-server, daprd (and Java and Maven
for the native Kugelpos runner) are programs it starts. A program is looked for, in order:

1. `$KUGELDRILL_<NAME>` (e.g. `KUGELDRILL_DAPRD=/opt/dapr/daprd`): an explicit choice wins;
2. the tools folder's `bin/` — what `kugeldrill setup` (or `make setup`) installed or built,
   pinned to the versions kugeldrill is tested with;
3. `PATH`;
4. `~/.dapr/bin` — where `dapr init --slim` puts daprd.

The tools folder is `$KUGELDRILL_TOOLS_DIR`; else, when kugeldrill runs from a source
checkout (an editable install), the checkout's `tools/`, which `make setup` fills; else a
per-user folder, `$XDG_DATA_HOME/kugeldrill/tools` (`~/.local/share/kugeldrill/tools`).
Nothing is ever written next to the installed package: site-packages may be read-only and
is shared by every user of the interpreter.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kugeldrill.ground.errors import MissingBinaryError

# The folder the `kugeldrill` package is imported from: a source checkout (editable install)
# or site-packages. Child processes get it on PYTHONPATH so they import this same copy.
PACKAGE_PARENT = Path(__file__).resolve().parents[2]

TOOLS_DIR_ENV = "KUGELDRILL_TOOLS_DIR"

_ADVICE = {
    "redis-server": "install it: 'apt-get install redis-server' (Debian/Ubuntu), 'brew install redis' (macOS); "
    "'kugeldrill setup' says what else is missing",
    "toxiproxy-server": "run 'kugeldrill setup' (builds it with 'go install' when Go is installed), or download "
    "release v2.12.0 from github.com/Shopify/toxiproxy/releases, or 'brew install toxiproxy'",
    "toxiproxy-cli": "run 'kugeldrill setup' (builds it with 'go install' when Go is installed)",
    "daprd": "run 'kugeldrill setup' (builds Dapr 1.18.0 from source with Go), or 'dapr init --slim' "
    "(puts daprd in ~/.dapr/bin)",
    "java": "install a JDK 17 ('apt-get install openjdk-17-jdk-headless'); only the native Kugelpos runner needs it",
    "mvn": "install Maven ('apt-get install maven'); only the native Kugelpos runner needs it",
}


def checkout_root() -> Path | None:
    """The source checkout kugeldrill runs from (editable install), or None when installed."""
    root = PACKAGE_PARENT
    if (root / "pyproject.toml").is_file() and (root / "scenarios").is_dir():
        return root
    return None


def tools_dir() -> Path:
    """The folder kugeldrill's own downloads and builds go to (see the module docstring)."""
    explicit = os.environ.get(TOOLS_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    checkout = checkout_root()
    if checkout is not None:
        return checkout / "tools"
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "kugeldrill" / "tools"


def tools_bin() -> Path:
    return tools_dir() / "bin"


def dapr_bin() -> Path:
    """Where the Dapr CLI's `dapr init --slim` installs daprd."""
    return Path.home() / ".dapr" / "bin"


def search_dirs() -> list[Path]:
    """The folders a program is looked for in, in order (after its environment override)."""
    path_dirs = [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    return [tools_bin(), *path_dirs, dapr_bin()]


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def env_override(name: str) -> str:
    """The environment variable that names `name`'s binary explicitly: KUGELDRILL_DAPRD_1_16 & co."""
    return "KUGELDRILL_" + name.upper().replace("-", "_").replace(".", "_")


def find_binary(name: str) -> Path:
    """Absolute path of program `name` (see the module docstring), else MissingBinaryError."""
    override = os.environ.get(env_override(name))
    if override:
        path = Path(override).expanduser()
        if not _executable(path):
            raise MissingBinaryError(f"{env_override(name)}={override} is not an executable file",
                                     hint=f"point it at a {name} binary, or unset it to search "
                                          f"{tools_bin()}, PATH and {dapr_bin()}")
        return path.absolute()
    for folder in search_dirs():
        candidate = folder / name
        if _executable(candidate):
            return candidate.absolute()
    found = shutil.which(name)  # PATH entries that are relative, or PATHEXT-like quirks
    if found:
        return Path(found).absolute()
    raise MissingBinaryError(f"{name} not found in {tools_bin()}, on PATH or in {dapr_bin()}",
                             hint=_ADVICE.get(name))
