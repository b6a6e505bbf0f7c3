"""`kugeldrill setup [--check] [--ack-model 1.18|1.16] [--json]`: find, or get, the programs a drill starts.

A drill starts redis-server, toxiproxy-server and one daprd per Dapr app. Each is looked up
as a drill looks it up — `$KUGELDRILL_<NAME>`, the tools folder's bin/, PATH, ~/.dapr/bin
(where `dapr init --slim` puts daprd) — and only what is not found is installed, into the
tools folder (`$KUGELDRILL_TOOLS_DIR`, the checkout's tools/, or ~/.local/share/kugeldrill/tools):

  toxiproxy  `go install github.com/Shopify/toxiproxy/v2/cmd/...@v2.12.0` (needs Go)
  daprd      built from Dapr's source on the Go module proxy by scripts/build-daprd.sh (the
             recipe `make setup` uses): minutes and about 2.4 GB of Go caches the first time
  redis      not installed by kugeldrill: the advice says how (apt-get, brew, a container)

Java and Maven are reported too: only `kugeldrill kugelpos up` (the native Kugelpos runner)
needs them.

examples:
  kugeldrill setup --check
  kugeldrill setup
  kugeldrill setup --only daprd --ack-model 1.16

Exit code: 0 every program a drill needs is there, 2 one is still missing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from kugeldrill.commands.jsonout import add_json_options, emit_json
from kugeldrill.ground.errors import DrillError, MissingBinaryError
from kugeldrill.ground.tools import TOOLS_DIR_ENV, find_binary, tools_bin, tools_dir

TOXIPROXY_VERSION = "v2.12.0"
TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2/cmd/..."
INSTALL_TIMEOUT = 900.0


@dataclass
class ToolState:
    name: str
    required: bool
    path: str | None = None
    version: str | None = None
    action: str = "found"  # found | installed | built | missing | wrong version
    advice: str | None = None

    @property
    def ok(self) -> bool:
        return self.path is not None and self.action in ("found", "installed", "built")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("setup", help="find redis-server, toxiproxy-server and daprd; install what is missing",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only report what is found; install nothing")
    p.add_argument("--ack-model", choices=("1.18", "1.16"), default="1.18",
                   help="the Dapr ack model whose daprd to get (1.16: daprd 1.16.0 as daprd-1.16; default 1.18)")
    p.add_argument("--only", choices=("redis-server", "toxiproxy-server", "daprd"), action="append",
                   help="look for (and get) only this program (repeatable)")
    add_json_options(p, "what was found", file=False)
    p.set_defaults(func=setup_command)


def _version(binary: Path, *args: str) -> str | None:
    try:
        out = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout or out.stderr).strip().splitlines()  # mvn colours its banner
    return text[0][:80] if text else None


def _found(name: str, required: bool, *version_args: str) -> ToolState:
    try:
        path = find_binary(name)
    except MissingBinaryError as exc:
        return ToolState(name, required, action="missing", advice=exc.hint)
    return ToolState(name, required, str(path), _version(path, *version_args) if version_args else None)


def _go() -> str | None:
    return shutil.which("go")


def install_toxiproxy() -> None:
    """`go install` toxiproxy's server and CLI into the tools folder's bin/."""
    go = _go()
    if go is None:
        raise MissingBinaryError("toxiproxy-server is not installed and Go is not there to build it",
                                 hint="install Go (go.dev/dl) and re-run, or download toxiproxy "
                                      f"{TOXIPROXY_VERSION} from github.com/Shopify/toxiproxy/releases")
    dest = tools_bin()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kugeldrill-toxiproxy-") as tmp:
        done = subprocess.run([go, "install", f"{TOXIPROXY_MODULE}@{TOXIPROXY_VERSION}"],
                              env={**os.environ, "GOBIN": tmp}, capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT)
        if done.returncode != 0:
            raise DrillError(f"go install {TOXIPROXY_MODULE}@{TOXIPROXY_VERSION} failed: "
                             f"{(done.stderr or done.stdout).strip()[-600:]}")
        for built, name in (("server", "toxiproxy-server"), ("cli", "toxiproxy-cli")):
            shutil.move(str(Path(tmp) / built), str(dest / name))


def build_daprd(ack_model: str) -> None:
    """scripts/build-daprd.sh (shipped as kugeldrill/ground/build-daprd.sh) into the tools folder."""
    script = resources.files("kugeldrill.ground").joinpath("build-daprd.sh")
    with resources.as_file(script) as path:
        done = subprocess.run(["bash", str(path), ack_model], env={**os.environ, TOOLS_DIR_ENV: str(tools_dir())},
                              timeout=3600)
    if done.returncode == 3:
        raise MissingBinaryError("daprd is not installed and Go is not there to build it",
                                 hint="install Go >= 1.24 and re-run, or 'dapr init --slim' (puts daprd in ~/.dapr/bin)")
    if done.returncode != 0:
        raise DrillError(f"building daprd failed (exit {done.returncode}); its log is in {tools_dir()}")


def _daprd(ack_model: str) -> ToolState:
    from kugeldrill.stack.launch.daprd import DAPRD_BINARIES, find_daprd

    name = DAPRD_BINARIES[ack_model]
    try:
        sidecar = find_daprd(ack_model)
    except MissingBinaryError as exc:
        return ToolState(name, True, action="missing", advice=exc.hint)
    except DrillError as exc:  # found, but another Dapr line (its ack model differs)
        return ToolState(name, True, action="wrong version", advice=exc.render())
    return ToolState(name, True, str(sidecar.binary), sidecar.version)


def _get(state: ToolState, install: Callable[[], None], again: Callable[[], ToolState]) -> ToolState:
    """Install a missing tool, then look again; a failure becomes the advice."""
    try:
        install()
    except DrillError as exc:
        state.advice = exc.render()
        return state
    found = again()
    found.action = "built" if found.ok else found.action
    return found


def setup_command(args: argparse.Namespace) -> int:
    wanted = set(args.only or ("redis-server", "toxiproxy-server", "daprd", "java", "mvn"))
    states = [state() for name, state in (
        ("redis-server", lambda: _found("redis-server", True, "--version")),
        ("toxiproxy-server", lambda: _found("toxiproxy-server", True, "--version")),
        ("daprd", lambda: _daprd(args.ack_model)),
        ("java", lambda: _found("java", False, "-version")),
        ("mvn", lambda: _found("mvn", False, "--version"))) if name in wanted]
    if not args.check:
        for i, state in enumerate(states):
            if state.ok:
                continue
            if state.name == "toxiproxy-server":
                states[i] = _get(state, install_toxiproxy, lambda: _found("toxiproxy-server", True, "--version"))
            elif state.name.startswith("daprd"):
                states[i] = _get(state, lambda: build_daprd(args.ack_model), lambda: _daprd(args.ack_model))
    ready = all(s.ok for s in states if s.required)
    if emit_json(args, {"tools_dir": str(tools_dir()), "ready": ready, "tools": [asdict(s) for s in states]}):
        return 0 if ready else 2
    print(f"tools folder: {tools_dir()}")
    for s in states:
        mark = "ok     " if s.ok else ("MISSING" if s.required else "absent ")
        detail = f"{s.path}" + (f" ({s.version})" if s.version else "") if s.path else s.action
        print(f"{mark} {s.name:18s} {detail}" + (" [built now]" if s.action == "built" else ""))
        if not s.ok and s.advice:
            note = "" if s.required else " (only the native Kugelpos runner needs it)"
            print(f"        {s.advice}{note}")
    print("kugeldrill setup: " + ("ready to drill" if ready else "something a drill needs is missing (see above)"))
    return 0 if ready else 2
