"""libcurl's multi interface driven by an asyncio event loop: no thread per request.

libcurl tells us which sockets to watch (`M_SOCKETFUNCTION`); they are watched in an epoll set
of our own, and only that set's one descriptor is registered with the loop, so one loop callback
serves every ready socket. A socket libcurl stops watching (its connection goes back to the pool)
stays in the set, parked, so the next request on that connection costs one `epoll_ctl`, not two:
a parked socket that turns ready (the server closed it) is taken out then, and closing a socket
takes it out of the set by itself, unless another process still holds it (a forked child): so
before a fork parking stops, and a registration that cannot be taken out is dropped with the
whole set, which is made again from the sockets libcurl watches. When libcurl next needs waking
up is asked of it (`timeout()`) after each time it runs, rather than told through a timer
callback: one C call instead of two Python callbacks per request. A finished transfer resolves
an asyncio future. All HTTP/1.1 and TLS work runs in C, on the loop's own thread. Linux only
(epoll), as the Functions Python worker is. Nothing here knows WNS.
"""

from __future__ import annotations

import asyncio
import os
import select
import weakref

import pycurl

if not hasattr(select, "epoll"):  # macOS, Windows: the HTTP client falls back to aiohttp
    raise ImportError("the libcurl driver needs epoll (Linux)")

_EPOLL_EVENTS = {
    pycurl.POLL_IN: select.EPOLLIN,
    pycurl.POLL_OUT: select.EPOLLOUT,
    pycurl.POLL_INOUT: select.EPOLLIN | select.EPOLLOUT,
}
_READABLE = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR


class CurlTransferError(Exception):
    """A transfer ended without a complete HTTP response: libcurl's error number and text."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


_drivers: weakref.WeakSet[AsyncCurlMulti] = weakref.WeakSet()


def _before_fork() -> None:
    for driver in list(_drivers):
        driver.stop_parking()


os.register_at_fork(before=_before_fork)


class AsyncCurlMulti:
    """One `CurlMulti` bound to one running event loop; `perform` runs one prepared easy handle."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_connections: int) -> None:
        self.loop = loop
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        # The pool: at most this many connections open, and as many kept alive for reuse.
        self._multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, max_connections)
        self._multi.setopt(pycurl.M_MAXCONNECTS, max_connections)
        self._epoll = select.epoll()
        self._watched: dict[int, int] = {}  # fd -> the events libcurl asked for
        self._in_set: set[int] = set()  # fds registered in the set: watched and parked ones
        self._unremovable: set[int] = set()  # parked fds whose registration could not be removed
        self._parking = True
        self._timer: asyncio.TimerHandle | None = None
        self._running: dict[pycurl.Curl, asyncio.Future[None]] = {}
        self.closed = False
        loop.add_reader(self._epoll.fileno(), self._on_ready)
        _drivers.add(self)

    # libcurl -> our epoll set

    def _on_socket(self, what: int, fd: int, _multi: object, _socketp: object) -> None:
        if self.closed:
            return
        if what == pycurl.POLL_REMOVE:
            # Called before libcurl closes the socket or puts its connection back in the pool:
            # the socket stays in the set, parked (see the module's docstring).
            self._watched.pop(fd, None)
            if not self._parking:
                self._take_out(fd)
            return
        events = _EPOLL_EVENTS[what]
        self._watched[fd] = events
        self._unremovable.discard(fd)
        if fd in self._in_set:
            try:
                self._epoll.modify(fd, events)
                return
            except FileNotFoundError:
                pass  # the parked socket was closed (and left the set); a new one has its number
        try:
            self._epoll.register(fd, events)
        except FileExistsError:
            self._epoll.modify(fd, events)
        self._in_set.add(fd)

    def _take_out(self, fd: int) -> bool:
        """Take `fd` out of the set; False if its registration could not be found by that number."""
        self._in_set.discard(fd)
        try:
            self._epoll.unregister(fd)
            return True
        except OSError:
            return False

    def _new_set(self) -> None:
        """A new epoll set holding only the sockets libcurl watches (stale registrations go)."""
        self.loop.remove_reader(self._epoll.fileno())
        self._epoll.close()
        self._epoll = select.epoll()
        for fd, events in self._watched.items():
            self._epoll.register(fd, events)
        self._in_set = set(self._watched)
        self._unremovable.clear()
        self.loop.add_reader(self._epoll.fileno(), self._on_ready)

    def stop_parking(self) -> None:
        """From now on a socket leaves the set when libcurl stops watching it, and parked ones
        leave it now (called before a fork: a child's copy would keep a closed one registered)."""
        self._parking = False
        if self.closed:
            return
        for fd in self._in_set - self._watched.keys():
            self._take_out(fd)

    def _wake_libcurl_in_time(self) -> None:
        """Have the loop call libcurl back by its next deadline (a timeout, or new transfers)."""
        timeout_ms = self._multi.timeout()
        if timeout_ms < 0:
            return
        when = self.loop.time() + timeout_ms / 1000
        # A timer that fires earlier is kept: waking libcurl early is harmless, and
        # `_on_timeout` asks again.
        timer = self._timer
        if timer is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self._timer = self.loop.call_at(when, self._on_timeout)

    # loop -> libcurl

    def _on_ready(self) -> None:
        if self.closed:
            return
        multi = self._multi
        watched = self._watched
        for fd, events in self._epoll.poll(0):
            if fd not in watched:
                # Parked and ready (an idle pooled connection the server closed): out of the set
                # until libcurl asks for it again; libcurl sees the closed connection on reuse.
                if fd in self._unremovable:
                    self._new_set()  # it still fires: a closed socket another process holds
                    break
                if not self._take_out(fd):
                    self._unremovable.add(fd)  # or just closed by libcurl, handling an earlier event
                continue
            action = 0
            if events & _READABLE:
                action |= pycurl.CSELECT_IN
            if events & select.EPOLLOUT:
                action |= pycurl.CSELECT_OUT
            if events & select.EPOLLERR:
                action |= pycurl.CSELECT_ERR
            multi.socket_action(fd, action)
        self._finish_done()
        self._wake_libcurl_in_time()

    def _on_timeout(self) -> None:
        self._timer = None
        if self.closed:
            return
        self._multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        self._finish_done()
        self._wake_libcurl_in_time()

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
        # A new transfer is due at once: one wake-up starts every transfer added meanwhile.
        timer = self._timer
        if timer is None or timer.when() > self.loop.time():
            self._wake_libcurl_in_time()
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
        _drivers.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.loop.is_closed():
            self.loop.remove_reader(self._epoll.fileno())
        self._epoll.close()
        self._watched.clear()
        self._in_set.clear()
        self._unremovable.clear()
        running, self._running = self._running, {}
        for handle, future in running.items():
            self._multi.remove_handle(handle)
            if not future.done():
                future.set_exception(CurlTransferError(pycurl.E_ABORTED_BY_CALLBACK, "client closed"))
        self._multi.close()
