"""Reading ahead in a thread: the same bytes in the same order, the source's error where it happened, and a
reader that stops when closed early (the real S3 path is covered by tests/storage/test_run_archive.py)."""

from __future__ import annotations

import io
import os
import threading

import pytest

from leruli_prefect.storage.read_ahead import ReadAhead


def test_reads_of_any_size_give_the_source_in_order() -> None:
    data = os.urandom(3 * 1024 * 1024 + 12345)
    with ReadAhead(io.BytesIO(data), chunk_bytes=64 * 1024, chunks_ahead=2) as ahead:
        parts = []
        for size in (1, 10240, 100_000, 7, 64 * 1024, 3 * 64 * 1024):
            parts.append(ahead.read(size))
        parts.append(ahead.read())
        assert b"".join(parts) == data
        assert ahead.read(10) == b"" and ahead.read(10) == b""  # the end stays the end


class _Breaking:
    """A source that gives `good` bytes, then fails as a connection cut short does."""

    def __init__(self, good: bytes) -> None:
        self._good = io.BytesIO(good)

    def read(self, size: int) -> bytes:
        chunk = self._good.read(size)
        if not chunk:
            raise ConnectionResetError("cut short")
        return chunk


def test_the_sources_error_is_raised_where_the_reading_reaches_it() -> None:
    with ReadAhead(_Breaking(b"x" * 1000), chunk_bytes=300) as ahead:
        assert ahead.read(1000) == b"x" * 300
        assert ahead.read(1000) == b"x" * 300
        assert ahead.read(1000) == b"x" * 300
        assert ahead.read(1000) == b"x" * 100
        with pytest.raises(ConnectionResetError, match="cut short"):
            ahead.read(1000)
        with pytest.raises(ConnectionResetError):  # and again: it does not turn into an end
            ahead.read(1000)


class _Endless:
    def __init__(self) -> None:
        self.reads = 0

    def read(self, size: int) -> bytes:
        self.reads += 1
        return b"y" * size


def test_closing_early_stops_the_reader() -> None:
    source = _Endless()
    ahead = ReadAhead(source, chunk_bytes=1024, chunks_ahead=4)
    assert ahead.read(10) == b"y" * 10
    ahead.close()
    reads = source.reads
    assert not any(thread.name == "read-ahead" for thread in threading.enumerate())
    assert reads <= 4 + 2  # the chunks queued, the one taken and the one in hand: nothing read past them
    assert source.reads == reads
