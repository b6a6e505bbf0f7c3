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


# ---------------------------------------------------------------------- sidecar kinds
#
# The sidecar conformance tests run against both Dapr sidecars: the real daprd and
# kugeldrill's stand-in (`sidecar_kind` fixture). Where daprd is not installed its half is
# skipped, except with KUGELDRILL_REQUIRE_DAPRD=1 (CI), where that is a failure.

SIDECAR_KINDS = ("standin", "daprd")


def _require_daprd() -> bool:
    return os.environ.get("KUGELDRILL_REQUIRE_DAPRD", "0") == "1"


def require_daprd(ack_model: str = "1.18") -> None:
    """Skip (or, where daprd is required, fail) unless real daprd for `ack_model` is installed.

    daprd for the 1.16 ack model is opt-in (`make daprd-1.16`): always a skip when missing.
    """
    from kugeldrill.ground.errors import DrillError
    from kugeldrill.stack.launch.sidecars import find_daprd

    try:
        find_daprd(ack_model)
    except DrillError as exc:
        if _require_daprd() and ack_model == "1.18":
            pytest.fail(f"KUGELDRILL_REQUIRE_DAPRD=1 but {exc.render()}")
        pytest.skip(f"real daprd not available: {exc.render()}")


@pytest.fixture(params=SIDECAR_KINDS)
def sidecar_kind(request: pytest.FixtureRequest) -> str:
    """"standin" or "daprd": the sidecar a conformance test runs against."""
    if request.param == "daprd":
        require_daprd("1.18")
    return str(request.param)


def pytest_sessionstart(session: pytest.Session) -> None:
    """With KUGELDRILL_REQUIRE_DAPRD=1 a stack must never fall back to the stand-in sidecar."""
    if _require_daprd():
        from kugeldrill.ground.errors import DrillError
        from kugeldrill.stack.launch.sidecars import find_daprd

        try:
            find_daprd("1.18")
        except DrillError as exc:
            pytest.exit(f"KUGELDRILL_REQUIRE_DAPRD=1 but {exc.render()}", returncode=3)
