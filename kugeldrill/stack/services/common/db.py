"""SQLite per service: the embedded replacement for Kugelpos' MongoDB.

One file per service in `config.data_dir` (`<name>.sqlite3`), WAL journal so readers never
block the writer, and unique indexes where Kugelpos has unique indexes (they are the
subscribers' second line of dedup and the publishers' `event_id` key). All access goes
through one dedicated thread: asyncio callers never block the event loop on disk I/O, and
statements of concurrent requests can never interleave inside a transaction.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class Database:
    """An SQLite file used from asyncio through a single worker thread."""

    def __init__(self, path: str | Path, schema: str = "") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{self.path.stem}")
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._schema = schema
        self._executor.submit(self._open).result()

    @classmethod
    def for_service(cls, data_dir: str | Path, name: str, schema: str) -> "Database":
        return cls(Path(data_dir) / f"{name.replace('-', '_')}.sqlite3", schema)

    def _open(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        if self._schema:
            conn.executescript(self._schema)
        self._conn = conn

    def _run(self, fn: Callable[[sqlite3.Connection], T], write: bool) -> T:
        conn = self._conn
        if conn is None:
            raise RuntimeError(f"database {self.path} is closed")
        if not write:
            return fn(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the database thread (no transaction)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, fn, False)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` in one transaction (BEGIN IMMEDIATE … COMMIT; ROLLBACK on error)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, fn, True)

    async def fetchone(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        def q(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(sql, params).fetchone()
            return dict(row) if row is not None else None

        return await self.read(q)

    async def fetchall(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        return await self.read(lambda conn: [dict(r) for r in conn.execute(sql, params).fetchall()])

    async def execute(self, sql: str, params: tuple | dict = ()) -> int:
        """One write statement in its own transaction; returns the row count."""
        return await self.write(lambda conn: conn.execute(sql, params).rowcount)

    def close_sync(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        try:
            self._executor.submit(_close).result(timeout=10)
        finally:
            self._executor.shutdown(wait=False)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close_sync)


def dumps(value: Any) -> str:
    """JSON for a TEXT column (compact; datetimes as strings)."""
    return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)


def loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def is_unique_violation(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)
