"""Reading a stream ahead in a thread, so that fetching it and consuming it overlap.

A node's stage-in unpacks `run.tgz` as it downloads (storage/run_archive.py). Read directly, the download
waits while tarfile unpacks, and tarfile asks for 10 KiB at a time, each read a round through urllib3: a
512 MiB archive took 2.1-2.3 s to fetch and unpack on a 2-core EPYC VM, 1.4-1.6 s with the fetching done
ahead in 1 MiB chunks by a thread. At most `CHUNKS_AHEAD` chunks wait, which bounds the memory one stage-in
holds.
"""

from __future__ import annotations

import queue
import threading

from leruli_prefect.storage.part_upload import Readable

CHUNK_BYTES = 1024 * 1024
CHUNKS_AHEAD = 8


class ReadAhead:
    """A file-like `read` over `source` whose reads are done by a thread, ahead of the caller's.

    An error of the source is raised by the `read` that reaches it, as it was raised. `close()` stops the
    thread (once its read in progress returns); it does not close `source`.
    """

    def __init__(
        self, source: Readable, chunk_bytes: int = CHUNK_BYTES, chunks_ahead: int = CHUNKS_AHEAD
    ) -> None:
        self._chunks: queue.Queue[bytes | BaseException] = queue.Queue(chunks_ahead)
        self._stopped = threading.Event()
        self._current = memoryview(b"")
        self._failure: BaseException | None = None
        self._at_end = False
        self._reader = threading.Thread(
            target=self._fill, args=(source, chunk_bytes), name="read-ahead", daemon=True
        )
        self._reader.start()

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all that is left for a negative size); fewer only at the end of a chunk."""
        if size < 0:
            return b"".join(iter(lambda: self.read(CHUNK_BYTES), b""))
        if not self._current:
            self._take_chunk()
        part, self._current = self._current[:size], self._current[size:]
        return part.tobytes()

    def close(self) -> None:
        self._stopped.set()
        while self._reader.is_alive():
            self._drain()  # a reader blocked on a full queue gets its place, sees the stop, and ends
            self._reader.join(timeout=0.05)

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _take_chunk(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._at_end:
            return
        item = self._chunks.get()
        if isinstance(item, BaseException):
            self._failure = item
            raise item
        self._at_end = not item
        self._current = memoryview(item)

    def _fill(self, source: Readable, chunk_bytes: int) -> None:
        try:
            while not self._stopped.is_set():
                chunk = source.read(chunk_bytes)
                self._chunks.put(chunk)
                if not chunk:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's read, raised there
            self._chunks.put(exc)

    def _drain(self) -> None:
        try:
            while True:
                self._chunks.get_nowait()
        except queue.Empty:
            pass
