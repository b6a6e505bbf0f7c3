"""The MongoDB wire-compatible server of the native runner: built from `mongo/`, run on loopback.

`mongo/` is a small Java project of ours around mongo-java-server (Maven Central): its
in-memory backend presented as a one-member replica set, so that Kugelpos' transactions,
pipeline updates and aggregations run (see the Java sources). It is built with Maven into
`tools/kugelpos-mongo/<hash of the sources>/` on first use (or by `make setup`), so a
changed source is rebuilt and an unchanged one never is.

Caveats a drill must keep in mind (README "Drilling your own Kugelpos checkout"): the data
are in memory only (gone when the server stops), and a transaction's writes are applied
one by one as they arrive — no isolation between documents, and an abort keeps what was
written. `transaction_stats()` counts commits and aborts so a run can say whether an abort
happened at all.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kugeldrill.ground.errors import DrillError, MissingBinaryError
from kugeldrill.ground.netguard import require_loopback
from kugeldrill.ground.tools import find_binary, tools_dir as kugeldrill_tools_dir
from kugeldrill.stack.launch.process import ManagedProcess, log_tail

SOURCE_DIR = Path(__file__).resolve().parent / "mongo"
JAR_NAME = "kugelpos-mongo-1.0.0.jar"
MAIN_CLASS = "kugeldrill.mongo.Main"
READY_LINE = "kugelpos-mongo ready on "
REPLICA_SET = "rs0"
BUILD_TIMEOUT = 900.0


class MongoBuildError(DrillError):
    """Maven could not build the server; the message quotes its log."""


def source_hash(source: Path = SOURCE_DIR) -> str:
    digest = hashlib.sha256()
    for path in sorted([source / "pom.xml", *source.glob("src/**/*.java")]):
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def tools_dir() -> Path:
    """Built servers, one folder per source hash, in kugeldrill's tools folder (never site-packages)."""
    return kugeldrill_tools_dir() / "kugelpos-mongo"


@dataclass(frozen=True, slots=True)
class MongoBuild:
    directory: Path
    built_now: bool
    seconds: float

    @property
    def classpath(self) -> str:
        return os.pathsep.join([str(self.directory / JAR_NAME), str(self.directory / "lib" / "*")])


def _tool(name: str, hint: str) -> str:
    try:
        return str(find_binary(name))
    except MissingBinaryError as exc:
        raise MissingBinaryError(f"{exc} (needed for the native Kugelpos' MongoDB server)", hint=hint) from None


def ensure_built(progress: Callable[[str], None] | None = None) -> MongoBuild:
    """The built server for the current sources (Maven runs only when they changed)."""
    say = progress or (lambda _m: None)
    key = source_hash()
    out = tools_dir() / key
    stamp = out / ".built"
    t0 = time.monotonic()
    if stamp.is_file():
        return MongoBuild(out, False, 0.0)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f"{key}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file():
            return MongoBuild(out, False, time.monotonic() - t0)
        mvn = _tool("mvn", "install Maven and a JDK 17 (e.g. 'apt-get install maven openjdk-17-jdk-headless')")
        _tool("java", "install a JDK 17 (e.g. 'apt-get install openjdk-17-jdk-headless')")
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        log = out.parent / f"{key}.build.log"
        say(f"building the MongoDB server (mongo-java-server) with Maven into {out} ...")
        cmd = [mvn, "-B", "-q", "-f", str(SOURCE_DIR / "pom.xml"), f"-Dkd.build.dir={out}", "package"]
        with open(log, "wb") as fh:
            try:
                proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      timeout=BUILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise MongoBuildError(f"Maven did not finish within {BUILD_TIMEOUT:.0f}s; log: {log}") from None
        if proc.returncode != 0 or not (out / JAR_NAME).is_file():
            raise MongoBuildError(f"building the MongoDB server failed (exit {proc.returncode}); last lines of {log}:\n"
                                  f"{log_tail(log, 25)}")
        stamp.write_text(f"{key}\n")
        seconds = time.monotonic() - t0
        say(f"MongoDB server built in {seconds:.1f}s")
        return MongoBuild(out, True, seconds)


@dataclass
class MongoServer:
    """One server process on loopback; `url` is what Kugelpos' MONGODB_URI gets."""

    build: MongoBuild
    log_path: Path
    port: int
    host: str = "127.0.0.1"
    # The data live in the heap and Kugelpos keeps every request it served (its log_requests
    # middleware writes each one to MongoDB): the Kugelpos suite grows the old generation by
    # ~65 MB a drill (jstat over `make drill-kugelpos`), so at -Xmx1g (683 MiB of old
    # generation) its 7th drill ran into back-to-back full collections and a service's
    # MongoDB calls timed out. 3g holds ~30 such drills on one deployment.
    heap: str = "3g"
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        # As Kugelpos' docker-compose.override.yaml: a replica set, connected to directly.
        return f"mongodb://{self.host}:{self.port}/?replicaSet={REPLICA_SET}&directConnection=true"

    def command(self) -> list[str]:
        java = _tool("java", "install a JDK 17 (e.g. 'apt-get install openjdk-17-jdk-headless')")
        # Every collection with its pause goes to gc.log beside the server's log: the data are
        # in memory, so a heap near its limit shows as long pauses there before any client times out.
        gc_log = self.log_path.with_name("gc.log")
        return [java, f"-Xmx{self.heap}", "-XX:+UseSerialGC", f"-Xlog:gc:file={gc_log}:time,uptime",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp", self.build.classpath, MAIN_CLASS, "--host", self.host, "--port", str(self.port),
                "--replica-set", REPLICA_SET]

    def start(self, timeout: float = 30.0) -> "MongoServer":
        require_loopback(self.host, what="MongoDB server address")
        self.process = ManagedProcess("mongodb server", self.command(), self.log_path)
        self.process.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.alive():
                raise self.process.fail(f"exited with code {self.process.proc.returncode if self.process.proc else '?'}")
            if READY_LINE in (self.log_path.read_text(errors="replace") if self.log_path.exists() else ""):
                return self
            time.sleep(0.05)
        self.process.stop()
        raise self.process.fail(f"did not print '{READY_LINE.strip()}' within {timeout:.0f}s")

    def record(self) -> dict[str, Any]:
        """The state-file entry of the started server (what `down` and a restart need)."""
        assert self.process is not None, "record() of a server that was not started"
        return {"url": self.url, "host": self.host, "port": self.port, "pid": self.process.pid,
                "log": str(self.log_path), "cmd": list(self.process.argv),
                "match": [MAIN_CLASS, "--port", str(self.port)]}

    def stop(self) -> None:
        if self.process:
            self.process.stop()


def transaction_stats(url: str, timeout: float = 5.0) -> dict[str, Any] | None:
    """The server's counters (commits, aborts, pipeline updates), or None if it cannot be asked."""
    try:
        import pymongo  # noqa: PLC0415 - optional (kugeldrill[native] / [mongo])
    except ImportError:
        return None
    require_loopback(url, what="MongoDB URL")
    ms = int(timeout * 1000)
    client = pymongo.MongoClient(url, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms)
    try:
        reply = client.admin.command("kugeldrillStats")
        return {k: int(v) for k, v in reply.items() if k != "ok"}
    except pymongo.errors.PyMongoError:
        return None
    finally:
        client.close()
