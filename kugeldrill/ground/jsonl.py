"""JSON-lines files written one flushed line at a time, so a crash loses nothing written."""

from __future__ import annotations

import json
import mmap
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from kugeldrill.ground.gzfiles import GZ_SUFFIX, open_stored, stored
from kugeldrill.ground.journal import pointer_for


class JsonlWriter:
    """Append-only, line-buffered, thread-safe JSONL writer (one os.write per record)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        with self._lock:
            os.write(self._fd, line)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield records; a torn last line (crash mid-write) is skipped, not fatal.

    Reads `path` or, once the run folder was compacted, its gzipped form (ground.gzfiles)."""
    with open_stored(path, "rb") as fh:
        for raw in fh:
            raw = raw.strip()
            if not raw:
                continue
            try:
                yield json.loads(raw)
            except json.JSONDecodeError:
                continue


#: Bytes read at a time by `read_blocks`: large enough that the decoder's per-call cost
#: vanishes, small enough that a block's decoded records (about 1 kB a line as objects)
#: stay a few megabytes.
BLOCK_BYTES = 1 << 20

#: A mapped file's pages read behind the cursor are dropped from this process every so many
#: bytes (`_mapped_blocks`): the page cache keeps them, this process's resident set does not.
DROP_BEHIND = 8 << 20


def read_blocks(path: str | Path, size: int = BLOCK_BYTES, limit: int | None = None,
                start: int = 0) -> Iterator[tuple[int, bytes | memoryview]]:
    """(offset, block) pairs of whole lines: each block ends after a newline, the last one
    may be a line without its newline (torn or not: the decoder decides). Offsets count
    bytes of the file as written (a gzipped file's decompressed stream). `limit`: read no
    further than that many bytes (what an earlier pass read of a file still written to);
    `start`: from that offset on (a line's start: `line_start`).

    A plain file is mapped and each block is a view of the mapping (`_mapped_blocks`): no
    copy at all. A gzipped one (or one that cannot be mapped) is read into one reused buffer
    and each block copied out of it once. Either way a block stays valid as long as anything
    holds it: decoded values (msgspec.Raw) may keep a view of their block."""
    actual = stored(path)
    if not actual.name.endswith(GZ_SUFFIX):
        mapped = _mapped_blocks(actual, size, limit, start)
        if mapped is not None:
            yield from mapped
            return
    yield from _copied_blocks(actual, size, limit, start)


def _mapped_blocks(path: Path, size: int, limit: int | None,
                   start: int) -> Iterator[tuple[int, memoryview]] | None:
    """The blocks of a plain file as views of its mapping (None: it cannot be mapped, e.g.
    empty, or gone). Reading ~1 GB of page cache through read() costs ~0.3 s of CPU in
    copies (the kernel's into a buffer, then the block's out of it) that a mapping saves;
    its pages are dropped behind the cursor (`DROP_BEHIND`), so the resident set holds at
    most that much of the file, not all it read. The mapping is the file's size when
    opened: lines appended later are not read (as `limit` would say). A file with a
    journal beside it (a history shard still written, or its owner dead and not yet
    recovered) is not mapped: recovering the journal may cut the file back, and a mapping
    read past a file's end kills the process (SIGBUS)."""
    if pointer_for(path).exists():
        return None
    try:
        with open(path, "rb") as fh:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # empty (cannot be mapped), missing, or a special file
        return None
    return _views(mm, size, len(mm) if limit is None else min(limit, len(mm)), start)


def _views(mm: mmap.mmap, size: int, stop: int, start: int) -> Iterator[tuple[int, memoryview]]:
    page = mmap.PAGESIZE
    with memoryview(mm) as whole:
        pos, dropped = start, start - start % page
        while pos < stop:
            end = stop if pos + size >= stop else mm.rfind(b"\n", pos, pos + size) + 1
            if end == 0:  # a line longer than a block: up to its end
                nl = mm.find(b"\n", pos + size, stop)
                end = stop if nl < 0 else nl + 1
            yield pos, whole[pos:end]
            pos = end
            if pos - dropped >= DROP_BEHIND:
                upto = pos - pos % page
                mm.madvise(mmap.MADV_DONTNEED, dropped, upto - dropped)
                dropped = upto
    try:
        mm.close()
    except BufferError:  # a decoded value still views it: unmapped when the last one goes
        pass


def _copied_blocks(path: Path, size: int, limit: int | None, start: int) -> Iterator[tuple[int, bytes]]:
    buf = bytearray(size)
    view = memoryview(buf)
    with open_stored(path, "rb") as fh:
        if start:
            fh.seek(start)
        base, have = start, 0  # the file's offset of buf[0]; bytes held in buf
        while True:
            want = len(buf) - have if limit is None else min(len(buf) - have, limit - base - have)
            got = fh.readinto(view[have:have + want]) if want > 0 else 0
            if not got:
                if have:
                    yield base, bytes(view[:have])
                return
            have += got
            end = buf.rfind(b"\n", 0, have) + 1
            if end == 0:  # a line longer than the buffer: grow it
                view.release()
                buf.extend(bytes(len(buf)))
                view = memoryview(buf)
                continue
            yield base, bytes(view[:end])
            view[:have - end] = view[end:have]
            base, have = base + end, have - end


def line_start(path: str | Path, offset: int) -> int | None:
    """The offset of the first line that starts at or after `offset` in a plain file (None:
    no newline in the megabyte after it)."""
    if offset <= 0:
        return 0
    with open(path, "rb") as fh:
        fh.seek(offset - 1)
        ahead = fh.read(BLOCK_BYTES)
    nl = ahead.find(b"\n")
    return None if nl < 0 else offset + nl


def decode_block(decoder: Any, block: bytes, base: int | None = None, coerce: Any = None) -> Any:
    """The records of a block of JSON lines, decoded with a msgspec decoder in one call.

    Where a line does not decode as the decoder's type (an unexpected field type) the block
    is decoded line by line: such a line is given as the plain JSON object it holds (a dict,
    or `coerce(dict)`), and a line that is not JSON at all (a torn last line after a crash)
    is skipped, as `read_jsonl` does. With `base` (the block's offset), returns (records, offsets): where
    each record's line starts in the file."""
    try:
        recs = decoder.decode_lines(block)
    except msgspec.DecodeError:
        recs = None
    if recs is not None and base is None:
        return recs
    if recs is not None:  # where each line starts: after each newline, blank lines left out
        ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
        starts = np.concatenate(([0], ends + 1))
        ends = np.concatenate((ends, [len(block)]))
        full = starts[ends > starts]
        if len(full) == len(recs):
            return recs, (full + base).tolist()
    out: list[Any] = []
    offsets: list[int] = []
    pos = 0 if base is None else base
    for raw in bytes(block).split(b"\n"):
        start, pos = pos, pos + len(raw) + 1
        raw = raw.strip()
        if not raw:
            continue
        if recs is not None:
            offsets.append(start)
            continue
        try:
            out.append(decoder.decode(raw))
            offsets.append(start)
            continue
        except msgspec.DecodeError:
            pass
        try:
            rec = _plain.decode(raw)
        except msgspec.DecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec if coerce is None else coerce(rec))
            offsets.append(start)
    if recs is not None:
        out = recs
    return out if base is None else (out, offsets)


_plain = msgspec.json.Decoder()
