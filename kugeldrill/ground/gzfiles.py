"""Files kept gzipped once a drill is over, read exactly like their plain form.

A finished run folder keeps its logs, events and merged history gzipped (they shrink about
tenfold; `kugeldrill.drill.compact`). Readers open files through `open_stored`, so the one
reader of each file reads the file as written (`events/cart.jsonl`) and its gzipped form
(`events/cart.jsonl.gz`) alike, and a caller never has to know which of the two is there.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import IO, Literal

from kugeldrill.ground.jsonfile import atomic_file

GZ_SUFFIX = ".gz"


def gzipped(path: str | Path) -> Path:
    """`path` with `.gz` appended (`cart.jsonl` -> `cart.jsonl.gz`)."""
    path = Path(path)
    return path.with_name(path.name + GZ_SUFFIX)


def stored(path: str | Path) -> Path:
    """The file as it is on disk: `path` itself, else its gzipped form, else `path` (missing),
    so an error names the file as it was written."""
    path = Path(path)
    if path.exists() or path.name.endswith(GZ_SUFFIX):
        return path
    gz = gzipped(path)
    return gz if gz.exists() else path


def plain_name(path: str | Path) -> str:
    """The file's name as written (`cart.jsonl.gz` -> `cart.jsonl`)."""
    name = Path(path).name
    return name[: -len(GZ_SUFFIX)] if name.endswith(GZ_SUFFIX) else name


def open_stored(path: str | Path, mode: Literal["rb", "rt"] = "rb", *, errors: str = "strict") -> IO:
    """Open `path` or its gzipped form for reading; gzip is detected from the name."""
    actual = stored(path)
    if actual.name.endswith(GZ_SUFFIX):
        if mode == "rt":
            return gzip.open(actual, "rt", encoding="utf-8", errors=errors)
        return gzip.open(actual, "rb")
    if mode == "rt":
        return open(actual, encoding="utf-8", errors=errors)
    return open(actual, "rb")


def gzip_in_place(path: str | Path, *, level: int = 6) -> Path:
    """Replace `path` by `path.gz` (written beside it and renamed, so a crash leaves the plain
    file or the complete gzip, never half of one); returns the gzip's path."""
    path = Path(path)
    target = gzipped(path)
    with open(path, "rb") as src, atomic_file(target, "wb") as raw, \
            gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, compresslevel=level) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    path.unlink()
    return target
