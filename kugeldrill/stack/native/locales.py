"""The ja_JP.UTF-8 locale Kugelpos' receipts need, compiled into the cache.

kugel_common's receipt code calls `locale.setlocale(locale.LC_ALL, 'ja_JP.UTF-8')` (every
terminal open/close and every bill renders a receipt), and Kugelpos' Dockerfiles generate
that locale and run with LC_ALL=ja_JP.UTF-8. Instead of changing the machine's locales,
`localedef` compiles it from glibc's locale sources (Debian package `locales`) into the
cache, and the services get LOCPATH pointing there, with LANG/LC_ALL as in the Dockerfiles.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

from kugeldrill.ground.errors import DrillError, MissingBinaryError

LOCALE = "ja_JP.UTF-8"
SOURCES = Path("/usr/share/i18n/locales")


def ensure_locale(cache: Path) -> Path:
    """The LOCPATH directory holding ja_JP.UTF-8 (compiled once)."""
    locpath = cache / "locale"
    target = locpath / LOCALE
    if (target / "LC_CTYPE").is_file():
        return locpath
    localedef = shutil.which("localedef")
    if localedef is None or not (SOURCES / "ja_JP").is_file():
        raise MissingBinaryError(
            f"cannot compile the {LOCALE} locale Kugelpos' receipts need (localedef or {SOURCES / 'ja_JP'} missing)",
            hint="install glibc's locale sources: 'apt-get install locales' (Debian/Ubuntu)")
    locpath.mkdir(parents=True, exist_ok=True)
    with open(locpath / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "LC_CTYPE").is_file():
            return locpath
        shutil.rmtree(target, ignore_errors=True)
        proc = subprocess.run([localedef, "-i", "ja_JP", "-f", "UTF-8", str(target)], capture_output=True, text=True,
                              timeout=300)
        # localedef exits 1 for warnings while still writing the locale; the files decide.
        if not (target / "LC_CTYPE").is_file():
            raise DrillError(f"localedef could not compile {LOCALE} (exit {proc.returncode}): "
                             f"{(proc.stderr or proc.stdout).strip()[-400:]}")
    return locpath
