"""The libcurl driver's epoll set: sockets of pooled connections stay in it, parked, and leave it
when they turn ready or are closed, whatever number the next socket gets."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import warnings
from collections.abc import AsyncIterator

import pycurl
import pytest

from pushfuncs.curl_asyncio import AsyncCurlMulti


@pytest.fixture
async def multi() -> AsyncIterator[AsyncCurlMulti]:
    driver = AsyncCurlMulti(asyncio.get_running_loop(), max_connections=4)
    yield driver
    driver.close()


def ready(driver: AsyncCurlMulti) -> dict[int, int]:
    return dict(driver._epoll.poll(0))


def park(driver: AsyncCurlMulti, fd: int) -> None:
    """libcurl watches `fd` for a response, then its connection goes back to the pool."""
    driver._on_socket(pycurl.POLL_IN, fd, None, None)
    driver._on_socket(pycurl.POLL_REMOVE, fd, None, None)


async def test_a_socket_libcurl_stops_watching_stays_in_the_set(multi: AsyncCurlMulti) -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        fd = ours.fileno()
        park(multi, fd)
        peer.send(b"x")
        assert ready(multi).get(fd, 0) & select.EPOLLIN  # still registered: no epoll_ctl to park it


async def test_a_parked_socket_that_turns_ready_leaves_the_set(multi: AsyncCurlMulti) -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        fd = ours.fileno()
        park(multi, fd)
        peer.close()  # the server closes an idle pooled connection
        multi._on_ready()
        assert fd not in ready(multi)  # taken out, not reported again and again
        multi._on_socket(pycurl.POLL_IN, fd, None, None)  # libcurl asks for it again: watched
        assert ready(multi).get(fd, 0) & select.EPOLLIN


async def test_a_new_socket_with_a_parked_sockets_number_is_watched(multi: AsyncCurlMulti) -> None:
    first, first_peer = socket.socketpair()
    fd = first.fileno()
    park(multi, fd)
    first.close()  # libcurl closes the parked socket: the kernel takes it out of the set
    first_peer.close()
    second, second_peer = socket.socketpair()
    with second, second_peer:
        if second.fileno() != fd:  # give the new socket the old number, as the kernel often does
            os.dup2(second.fileno(), fd)
        try:
            multi._on_socket(pycurl.POLL_IN, fd, None, None)
            second_peer.send(b"x")
            assert ready(multi).get(fd, 0) & select.EPOLLIN
        finally:
            if second.fileno() != fd:
                os.close(fd)


async def test_a_closed_socket_another_process_holds_is_dropped_with_the_set(multi: AsyncCurlMulti) -> None:
    ours, peer = socket.socketpair()
    held = os.dup(ours.fileno())  # as a forked child's copy would keep it open
    try:
        fd = ours.fileno()
        park(multi, fd)
        ours.close()  # libcurl closes it: the registration lives on with the copy
        peer.close()  # and it turns ready, for good
        assert fd in ready(multi)
        multi._on_ready()  # cannot be taken out by its number any more
        multi._on_ready()  # still firing: a new set, without it
        assert ready(multi) == {}
        watched, watched_peer = socket.socketpair()
        with watched, watched_peer:  # the new set serves what libcurl watches
            multi._on_socket(pycurl.POLL_IN, watched.fileno(), None, None)
            watched_peer.send(b"x")
            assert ready(multi).get(watched.fileno(), 0) & select.EPOLLIN
    finally:
        os.close(held)


async def test_before_a_fork_parked_sockets_leave_the_set(multi: AsyncCurlMulti) -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        fd = ours.fileno()
        park(multi, fd)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # threads: the child only exits
            child = os.fork()
        if child == 0:
            os._exit(0)
        os.waitpid(child, 0)
        peer.send(b"x")
        assert fd not in ready(multi)  # taken out before the child got its copy
        multi._on_socket(pycurl.POLL_IN, fd, None, None)
        assert fd in ready(multi)
        multi._on_socket(pycurl.POLL_REMOVE, fd, None, None)
        assert fd not in ready(multi)  # and no longer parked after that
