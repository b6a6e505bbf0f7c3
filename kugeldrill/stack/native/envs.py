"""Python environments for the real Kugelpos services, built once and cached by lock file.

Each service gets an environment holding exactly its Pipfile.lock's pins (hashes checked),
plus `kugel_common` built from the checkout's `services/commons` source, plus the
DAPR_HTTP_PORT hook (`shim/`). Environments live in the cache (`~/.cache/kugeldrill/kugelpos`
or `$KUGELDRILL_CACHE/kugelpos`), never in the checkout, which may be read-only. The key of
an environment is the lock file's hash, the Python version and the kugel_common wheel's
hash: services whose locks are identical share one environment, a changed lock gets a new
one. A build runs under a file lock (two drills starting at once build it once) and is
marked complete only at its end, so an interrupted build is redone, never used.

uv (a PyPI package, installed with kugeldrill's `native` extra) builds an environment of
~55 pinned packages in seconds; without it, `python -m venv` and pip do the same, slower.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kugeldrill.ground.errors import ConfigError, DrillError, MissingBinaryError
from kugeldrill.ground.jsonfile import atomic_file
from kugeldrill.stack.native.pipfile_lock import PipfileLock

SHIM_DIR = Path(__file__).resolve().parent / "shim"
SHIM_FILES = ("kugeldrill_dapr_port.py", "kugeldrill_dapr_port.pth",
              "kugeldrill_service_group.py", "kugeldrill_service_group.pth")
STAMP = ".kugeldrill-env.json"
BUILD_TIMEOUT = 900.0  # seconds for one environment (a cold download on a slow mirror)

Progress = Callable[[str], None]


class EnvBuildError(DrillError):
    """An environment or the kugel_common wheel could not be built; the message has the log tail."""


def cache_root() -> Path:
    """`$KUGELDRILL_CACHE`, else `$XDG_CACHE_HOME/kugeldrill`, else `~/.cache/kugeldrill`."""
    explicit = os.environ.get("KUGELDRILL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kugeldrill"


def _version_of(python: Path) -> str | None:
    """`X.Y.Z` of an interpreter, or None if it does not run (e.g. a pyenv shim of a version not selected)."""
    try:
        out = subprocess.run([str(python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def find_python(wanted: str | None) -> tuple[Path, str]:
    """A Python whose major.minor is `wanted` (the locks' `python_version`, e.g. "3.12").

    `KUGELDRILL_KUGELPOS_PYTHON` names one explicitly; otherwise `python3.X` on PATH, then
    pyenv's versions (highest patch first). Returns (path, full version).
    """
    explicit = os.environ.get("KUGELDRILL_KUGELPOS_PYTHON")
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    elif wanted:
        on_path = shutil.which(f"python{wanted}")
        if on_path:
            candidates.append(Path(on_path))
        pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
        if pyenv.is_dir():
            def patch(p: Path) -> int:
                tail = p.name[len(wanted) + 1:]
                return int(tail) if tail.isdigit() else -1
            versions = sorted((p for p in pyenv.glob(f"{wanted}.*") if re.fullmatch(rf"{re.escape(wanted)}\.\d+", p.name)),
                              key=patch, reverse=True)
            candidates += [p / "bin" / "python" for p in versions]
    for python in candidates:
        version = _version_of(python) if python.exists() else None
        if version is None:
            if explicit:
                raise ConfigError(f"KUGELDRILL_KUGELPOS_PYTHON={explicit} does not run")
            continue
        if wanted is None or version.startswith(wanted + ".") or explicit:
            if wanted and not version.startswith(wanted + "."):
                raise ConfigError(f"KUGELDRILL_KUGELPOS_PYTHON={explicit} is Python {version}; the Pipfile.locks "
                                  f"require {wanted}")
            return python, version
    raise MissingBinaryError(
        f"no Python {wanted} found for the Kugelpos services (their Pipfile.locks require it)",
        hint=f"install it (e.g. 'pyenv install {wanted}', or apt's python{wanted}) or set KUGELDRILL_KUGELPOS_PYTHON",
    )


def find_uv() -> Path | None:
    """uv beside this interpreter (kugeldrill's `native` extra) or on PATH; None: use pip."""
    beside = Path(sys.executable).parent / "uv"
    if beside.exists():
        return beside
    found = shutil.which("uv")
    return Path(found) if found else None


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _tree_hash(root: Path, patterns: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _run(cmd: list[str], log: Path, *, env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = BUILD_TIMEOUT, what: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        fh.write(("$ " + " ".join(cmd) + "\n").encode())
        fh.flush()
        try:
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env=env, cwd=cwd, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EnvBuildError(f"{what}: did not finish within {timeout:.0f}s; log: {log}") from None
        except OSError as exc:
            raise EnvBuildError(f"{what}: cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise EnvBuildError(f"{what}: exited {proc.returncode}; last lines of {log}:\n{tail}")


def _uv_env() -> dict[str, str]:
    # Never let uv fetch a Python of its own: the environment uses the interpreter given.
    return dict(os.environ, UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1")


@dataclass(frozen=True, slots=True)
class ServiceEnv:
    """A built environment: where it is and what it was built from."""

    path: Path
    key: str
    python: Path  # the environment's interpreter
    built_now: bool
    seconds: float


class EnvBuilder:
    """Builds (or finds in the cache) kugel_common's wheel and the services' environments."""

    def __init__(self, base_python: Path, python_version: str, *, cache: Path | None = None,
                 progress: Progress | None = None, uv: Path | None | bool = True) -> None:
        self.base_python = base_python
        self.python_version = python_version
        self.root = (cache or cache_root()) / "kugelpos"
        self.progress = progress or (lambda _msg: None)
        self.uv = find_uv() if uv is True else (uv or None)

    # ------------------------------------------------------------------ kugel_common

    def common_wheel(self, commons_dir: Path) -> Path:
        """kugel_common built from `services/commons` (copied out first: the checkout may be read-only)."""
        if not (commons_dir / "pyproject.toml").is_file():
            raise ConfigError(f"{commons_dir} has no pyproject.toml; is this a Kugelpos checkout's services/commons?")
        key = _tree_hash(commons_dir, ("pyproject.toml", "src/**/*"))[:16]
        out = self.root / "wheels" / key
        wheels = sorted(out.glob("kugel_common-*.whl"))
        if wheels:
            return wheels[0]
        with _file_lock(self.root / "wheels" / f"{key}.lock"):
            wheels = sorted(out.glob("kugel_common-*.whl"))
            if wheels:
                return wheels[0]
            self.progress(f"building kugel_common from {commons_dir} ...")
            t0 = time.monotonic()
            log = self.root / "wheels" / f"{key}.log"
            log.unlink(missing_ok=True)
            with tempfile.TemporaryDirectory(prefix="kd-commons-") as tmp:
                src = Path(tmp) / "commons"
                shutil.copytree(commons_dir, src, ignore=shutil.ignore_patterns("__pycache__", "dist", "build", "*.egg-info"))
                for path in [src, *src.rglob("*")]:
                    path.chmod(path.stat().st_mode | 0o200)
                staging = Path(tmp) / "dist"
                if self.uv:
                    _run([str(self.uv), "build", "--wheel", "--python", str(self.base_python), "--out-dir", str(staging),
                          str(src)], log, env=_uv_env(), what="building kugel_common")
                else:
                    _run([str(self.base_python), "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(staging), str(src)],
                         log, what="building kugel_common")
                built = sorted(staging.glob("kugel_common-*.whl"))
                if not built:
                    raise EnvBuildError(f"building kugel_common produced no wheel; log: {log}")
                with open(built[0], "rb") as src, atomic_file(out / built[0].name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            self.progress(f"built {built[0].name} in {time.monotonic() - t0:.1f}s")
            return out / built[0].name

    # ------------------------------------------------------------------ environments

    def key(self, lock: PipfileLock, wheel: Path) -> str:
        wheel_hash = hashlib.sha256(wheel.read_bytes()).hexdigest()
        return hashlib.sha256(f"{lock.sha256}\0{self.python_version}\0{wheel_hash}".encode()).hexdigest()[:16]

    def ensure(self, name: str, lock: PipfileLock, wheel: Path) -> ServiceEnv:
        """The environment for `lock` (built now if not cached), with the DAPR_HTTP_PORT hook."""
        key = self.key(lock, wheel)
        path = self.root / "envs" / key
        t0 = time.monotonic()
        built = False
        if not (path / STAMP).is_file():
            with _file_lock(self.root / "envs" / f"{key}.lock"):
                if not (path / STAMP).is_file():
                    self._build(name, lock, wheel, path, key)
                    built = True
        python = path / "bin" / "python"
        self._install_shim(path)
        seconds = time.monotonic() - t0
        if not built:
            self.progress(f"{name}: environment {key} (cached)")
        return ServiceEnv(path=path, key=key, python=python, built_now=built, seconds=seconds)

    def _build(self, name: str, lock: PipfileLock, wheel: Path, path: Path, key: str) -> None:
        if path.exists():
            shutil.rmtree(path)  # an interrupted build: never used, rebuilt
        pinned = lock.pinned()
        self.progress(f"{name}: building environment {key} ({len(pinned)} pinned packages from "
                      f"{lock.path}, Python {self.python_version}) ...")
        t0 = time.monotonic()
        log = self.root / "envs" / f"{key}.log"
        log.unlink(missing_ok=True)
        req = self.root / "envs" / f"{key}.requirements.txt"
        req.write_text(lock.requirements())
        python = path / "bin" / "python"
        if self.uv:
            env = _uv_env()
            _run([str(self.uv), "venv", "--quiet", "--python", str(self.base_python), str(path)], log, env=env,
                 what=f"creating the environment of {name}")
            _run([str(self.uv), "pip", "install", "--python", str(python), "--require-hashes", "--no-deps",
                  "-r", str(req)], log, env=env, what=f"installing {name}'s pinned packages")
            _run([str(self.uv), "pip", "install", "--python", str(python), "--no-deps", str(wheel)], log, env=env,
                 what=f"installing kugel_common into {name}'s environment")
        else:
            _run([str(self.base_python), "-m", "venv", str(path)], log, what=f"creating the environment of {name}")
            _run([str(python), "-m", "pip", "install", "--quiet", "--require-hashes", "--no-deps", "-r", str(req)], log,
                 what=f"installing {name}'s pinned packages")
            _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], log,
                 what=f"installing kugel_common into {name}'s environment")
        seconds = time.monotonic() - t0
        (path / STAMP).write_text(json.dumps({
            "key": key, "lock": str(lock.path), "lock_sha256": lock.sha256, "python": self.python_version,
            "packages": len(pinned) + 1, "kugel_common": wheel.name, "tool": "uv" if self.uv else "pip",
            "built_seconds": round(seconds, 2), "built_wall": time.time(),
        }, indent=2))
        self.progress(f"{name}: environment {key} built in {seconds:.1f}s")

    def _install_shim(self, path: Path) -> None:
        """Copy the DAPR_HTTP_PORT hook into site-packages (refreshed if the project's copy changed)."""
        site = next(iter(sorted(path.glob("lib/python*/site-packages"))), None)
        if site is None:
            raise EnvBuildError(f"environment {path} has no lib/python*/site-packages")
        for name in SHIM_FILES:
            src = (SHIM_DIR / name).read_bytes()
            dest = site / name
            if not dest.exists() or dest.read_bytes() != src:
                with atomic_file(dest, "wb") as fh:
                    fh.write(src)
