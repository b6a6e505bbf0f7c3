"""The run folder: one directory per drill holding everything it produced (contracts §7).

`runs/<YYYYmmdd-HHMMSS>-<scenario>/` by default; `--runs-dir DIR` puts it in DIR instead,
and `--out DIR` names the run folder itself (one scenario).
"""

from __future__ import annotations

import time
from pathlib import Path

from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.runfolder import RunFolder
from kugeldrill.scenario import LoadedScenario

DEFAULT_BASE = Path("runs")


def run_dir_for(scenario: str, *, out: Path | None = None, runs_dir: Path | None = None,
                now: float | None = None) -> Path:
    """Create and return a fresh run folder — `out` itself, or `<runs_dir>/<time>-<scenario>/` —
    never reusing one that holds a previous run."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now if now is not None else time.time()))
    if out is not None:
        path = out
        if RunFolder(path).verdict_json.exists():
            raise ConfigError(f"--out {path} already holds a run (verdict.json); choose an empty folder",
                              hint="or --runs-dir DIR for a new <time>-<scenario>/ folder in DIR")
    else:
        base = runs_dir if runs_dir is not None else DEFAULT_BASE
        path = base / f"{stamp}-{scenario}"
        n = 2
        while path.exists():
            path = base / f"{stamp}-{scenario}-{n}"
            n += 1
    return make_folder(path, "run folder")


def make_folder(path: Path, what: str) -> Path:
    """Create `path` (and its parents); a folder that cannot be made is the user's error
    (a read-only place, a file in the way), said with its path, never a traceback."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {what} {path}: {exc.strerror}") from None
    return path.resolve()


def write_scenario(run_dir: Path, loaded: LoadedScenario) -> Path:
    """The scenario exactly as run (its original text, with where it came from)."""
    path = RunFolder(run_dir).scenario_yaml
    path.write_text(f"# scenario as run, from {loaded.path}\n{loaded.text}", encoding="utf-8")
    return path
