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

from kugeldrill.stack.servers import RedisServer, ToxiproxyServer  # noqa: E402


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
