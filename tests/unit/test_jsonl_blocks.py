"""read_blocks: a mapped plain file gives the same blocks as the file read through a buffer."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from kugeldrill.ground import jsonl
from kugeldrill.ground.jsonl import _copied_blocks, _mapped_blocks, read_blocks


def _lines(n: int) -> bytes:
    out = []
    for i in range(n):
        pad = "x" * (i * 37 % 300 if i != 77 else 5000)  # one line longer than a block
        out.append(f'{{"i":{i},"pad":"{pad}"}}\n'.encode())
    return b"".join(out)


@pytest.mark.parametrize("torn", [False, True])
@pytest.mark.parametrize("size", [64, 1000, 1 << 20])
def test_mapped_blocks_cover_the_same_bytes_as_copied_blocks_from_any_start_to_any_limit(
        tmp_path: Path, monkeypatch, size: int, torn: bool) -> None:
    """Where blocks are cut may differ (the buffer grows for a long line and stays grown);
    what they hold, where each starts, and that each but the last ends a line may not."""
    monkeypatch.setattr(jsonl, "DROP_BEHIND", 4096)  # pages dropped behind the cursor many times over
    data = _lines(400) + (b'{"i":400,"pa' if torn else b"")
    path = tmp_path / "e.jsonl"
    path.write_bytes(data)
    starts = [0] + [data.index(b"\n", k) + 1 for k in (1, 5000, 30000)]
    for start in starts:
        for limit in (None, len(data) - 3, start + 5001, len(data) + 10):
            mapped = _mapped_blocks(path, size, limit, start)
            assert mapped is not None
            views = [(base, bytes(block)) for base, block in mapped]
            assert all(len(b) <= size or b.count(b"\n") <= 1 for _, b in views)  # a block's worth, or one line
            for blocks in (views, list(_copied_blocks(path, size, limit, start))):
                assert b"".join(b for _, b in blocks) == data[start:limit], (start, limit)
                assert [base for base, _ in blocks] == [start + sum(len(b) for _, b in blocks[:i])
                                                        for i in range(len(blocks))]
                assert all(b.endswith(b"\n") for _, b in blocks[:-1])  # whole lines but maybe the last


def test_a_block_outlives_the_reading_and_a_gzipped_or_journalled_file_is_read_through_a_buffer(tmp_path: Path) -> None:
    data = _lines(50)
    plain = tmp_path / "e.jsonl"
    plain.write_bytes(data)
    blocks = [block for _, block in read_blocks(plain, size=256)]
    assert isinstance(blocks[0], memoryview) and b"".join(map(bytes, blocks)) == data  # the mapping kept
    gz = tmp_path / "g.jsonl"
    with gzip.open(tmp_path / "g.jsonl.gz", "wb") as fh:
        fh.write(data)
    copied = [b for _, b in read_blocks(gz, size=256)]
    assert {type(b) for b in copied} == {bytes} and b"".join(copied) == data
    (tmp_path / "e.jsonl.journal").write_text("/dev/shm/somebody")  # still written: may be cut back
    assert _mapped_blocks(plain, 256, None, 0) is None
    assert b"".join(b for _, b in read_blocks(plain, size=256)) == data
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert list(read_blocks(empty)) == []  # no mapping of an empty file: read, nothing in it
