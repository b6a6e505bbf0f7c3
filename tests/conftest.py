"""Shared test configuration and fixtures for the real servers.

Integration tests use the real redis-server and toxiproxy-server (found on PATH or in
tools/bin, installed by `make setup`), each started on a free loopback port.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ["PATH"] = f"{ROOT / 'tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"

from kugeldrill.stack.launch.servers import RedisServer, ToxiproxyServer  # noqa: E402

# pytest's own fixture for testing a plugin: the kugeldrill plugin's tests run user projects with it.
pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of this checkout: setuptools writes build/ into the source
    folder, and two test processes building in the checkout at once would trip over each other."""
    import shutil
    import subprocess
    import sys

    src = tmp_path_factory.mktemp("wheel-src") / "kugeldrill"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "tools", "runs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".kugeldrill"))
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(dist), str(src)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("kugeldrill-*.whl")
    return wheel


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server for one test."""
    server = RedisServer(workdir=tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def toxiproxy_server(tmp_path: Path) -> Iterator[ToxiproxyServer]:
    """A fresh toxiproxy-server for one test."""
    server = ToxiproxyServer(workdir=tmp_path / "toxiproxy").start()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------- daprd
#
# Real daprd is the only Dapr sidecar. `make setup` builds tools/bin/daprd (Dapr 1.18) and
# fails without it, so a test that needs it finds it; run outside `make`, a missing daprd
# fails the test with the command that builds it (never a skip). daprd 1.16, for the ≤ 1.16
# acknowledgement model, is opt-in (`make daprd-1.16`); see `daprd_116`.


@pytest.fixture(scope="session")
def daprd():
    """The daprd for the 1.18 ack model; a missing one is an error naming `make setup`."""
    from kugeldrill.stack.launch.daprd import find_daprd

    return find_daprd("1.18")


@pytest.fixture(scope="session")
def daprd_116():
    """The daprd for the ≤ 1.16 ack model (tools/bin/daprd-1.16, `make daprd-1.16`).

    Opt-in: its first build on a machine costs about 3 CPU-minutes that `make test` does not
    spend on a fresh machine (its 25-minute budget is for the whole suite). Without it the few
    tests of that model are skipped, and pytest's summary (`-ra` in pyproject.toml) shows why
    and the command that builds it. CI (.ci/run) builds it, in about 25 s with warm Go caches,
    and fails if that build fails, so there these tests run."""
    from kugeldrill.ground.errors import DrillError
    from kugeldrill.stack.launch.daprd import find_daprd

    try:
        return find_daprd("1.16")
    except DrillError as exc:
        pytest.skip(f"the <= 1.16 ack model needs daprd 1.16, which is opt-in: {exc.render()}")
