"""libcurl's multi interface driven by an asyncio event loop: no thread per request.

libcurl tells us which sockets to watch (`M_SOCKETFUNCTION`) and when to wake it up
(`M_TIMERFUNCTION`); we register those with the loop (`add_reader`/`add_writer`/`call_later`)
and hand each event back with `socket_action`. All HTTP/1.1 and TLS work then runs in C, on the
loop's own thread, and a finished transfer resolves an asyncio future. Nothing here knows WNS.
"""

from __future__ import annotations

import asyncio

import pycurl

_WANTS_READ = (pycurl.POLL_IN, pycurl.POLL_INOUT)
_WANTS_WRITE = (pycurl.POLL_OUT, pycurl.POLL_INOUT)


class CurlTransferError(Exception):
    """A transfer ended without a complete HTTP response: libcurl's error number and text."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


class AsyncCurlMulti:
    """One `CurlMulti` bound to one running event loop; `perform` runs one prepared easy handle."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_connections: int) -> None:
        self.loop = loop
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        # The pool: at most this many connections open, and as many kept alive for reuse.
        self._multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, max_connections)
        self._multi.setopt(pycurl.M_MAXCONNECTS, max_connections)
        self._watched: dict[int, int] = {}  # fd -> what libcurl last asked for (POLL_*)
        self._timer: asyncio.TimerHandle | None = None
        self._running: dict[pycurl.Curl, asyncio.Future[None]] = {}
        self.closed = False

    # libcurl -> loop

    def _on_socket(self, what: int, fd: int, _multi: object, _socketp: object) -> None:
        if self.closed:
            return
        before = self._watched.get(fd, pycurl.POLL_REMOVE)
        after = what
        loop = self.loop
        if (before in _WANTS_READ) != (after in _WANTS_READ):
            if after in _WANTS_READ:
                loop.add_reader(fd, self._on_event, fd, pycurl.CSELECT_IN)
            else:
                loop.remove_reader(fd)
        if (before in _WANTS_WRITE) != (after in _WANTS_WRITE):
            if after in _WANTS_WRITE:
                loop.add_writer(fd, self._on_event, fd, pycurl.CSELECT_OUT)
            else:
                loop.remove_writer(fd)
        if after == pycurl.POLL_REMOVE:
            self._watched.pop(fd, None)
        else:
            self._watched[fd] = after

    def _on_timer(self, timeout_ms: int) -> None:
        if self.closed:
            return
        if timeout_ms < 0:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        when = self.loop.time() + timeout_ms / 1000
        # A timer that fires earlier is kept (every add_handle asks for 0 ms: one wake-up serves
        # them all); waking libcurl early is harmless, and `_on_timeout` re-reads its deadline.
        if self._timer is not None:
            if self._timer.when() <= when:
                return
            self._timer.cancel()
        self._timer = self.loop.call_at(when, self._on_timeout)

    # loop -> libcurl

    def _on_event(self, fd: int, event: int) -> None:
        self._multi.socket_action(fd, event)
        self._finish_done()

    def _on_timeout(self) -> None:
        self._timer = None
        if self.closed:
            return
        self._multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        self._finish_done()
        # libcurl calls the timer function only when its next deadline changes; after a wake-up
        # it did not expect (early, or by another clock's reading), ask it again.
        if self._timer is None:
            next_ms = self._multi.timeout()
            if next_ms >= 0:
                self._on_timer(next_ms)

    def _finish_done(self) -> None:
        while True:
            queued, ok, failed = self._multi.info_read()
            for handle in ok:
                self._multi.remove_handle(handle)
                future = self._running.pop(handle)
                if not future.done():
                    future.set_result(None)
            for handle, code, message in failed:
                self._multi.remove_handle(handle)
                future = self._running.pop(handle)
                if not future.done():
                    future.set_exception(CurlTransferError(code, message))
            if not queued:
                return

    # the caller's side

    async def perform(self, handle: pycurl.Curl) -> None:
        """Run one prepared transfer; raises `CurlTransferError` if it ends without a response.

        If the caller is cancelled, the transfer is taken out of the multi handle (its
        connection is closed by libcurl, never reused half-way through an exchange)."""
        if self.closed:
            raise CurlTransferError(pycurl.E_FAILED_INIT, "client closed")
        future = self.loop.create_future()
        self._running[handle] = future
        self._multi.add_handle(handle)
        try:
            await future
        except asyncio.CancelledError:
            if self._running.pop(handle, None) is not None and not self.closed:
                self._multi.remove_handle(handle)
            raise

    def close(self) -> None:
        """Fail every running transfer, stop watching, close every connection."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        loop_open = not self.loop.is_closed()
        for fd, what in self._watched.items():
            if loop_open:
                if what in _WANTS_READ:
                    self.loop.remove_reader(fd)
                if what in _WANTS_WRITE:
                    self.loop.remove_writer(fd)
        self._watched.clear()
        running, self._running = self._running, {}
        for handle, future in running.items():
            self._multi.remove_handle(handle)
            if not future.done():
                future.set_exception(CurlTransferError(pycurl.E_ABORTED_BY_CALLBACK, "client closed"))
        self._multi.close()
