"""A TCP forwarder on 127.0.0.1 that a test can take away and bring back: S3 going away for one node only.

The shared S3 serves every helper and test at once and must never be stopped; a node under test is pointed
at this proxy instead. Away, the proxy refuses new connections and cuts the open ones (as a crashed or
unplugged S3 does); back, it forwards again on the same port.
"""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import urlsplit

from tests.stack import free_port


class FlakyProxy:
    """>>> proxy = FlakyProxy("http://127.0.0.1:7480"); proxy.url  # 'http://127.0.0.1:<port>'"""

    def __init__(self, target_url: str) -> None:
        target = urlsplit(target_url)
        self._target = (target.hostname or "127.0.0.1", target.port or 80)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.come_back()

    def _run(self, coroutine) -> None:  # noqa: ANN001 - a coroutine
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def come_back(self) -> None:
        self._run(self._listen())

    def go_away(self) -> None:
        self._run(self._shut())

    def close(self) -> None:
        self.go_away()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._forward, "127.0.0.1", self.port, reuse_address=True
            )

    async def _shut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._open):
            writer.transport.abort()  # a reset, not a polite end: the client sees the connection break
        self._open.clear()

    async def _forward(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.transport.abort()
            return
        self._open.update((client_writer, upstream_writer))
        await asyncio.gather(
            _pipe(client_reader, upstream_writer),
            _pipe(upstream_reader, client_writer),
            return_exceptions=True,
        )
        self._open.difference_update((client_writer, upstream_writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
