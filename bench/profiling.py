"""Where the engine's CPU time goes: cProfile, summed by package and by hottest function."""

from __future__ import annotations

import cProfile
import pstats
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Most specific first: the first matching fragment names the package of a frame.
PACKAGES: tuple[tuple[str, str], ...] = (
    ("/pushfuncs/", "pushfuncs (the app)"),
    ("/bench/", "benchmark driver"),
    ("/azure/data/tables/", "azure-data-tables"),
    ("/azure/storage/queue/", "azure-storage-queue"),
    ("/azure/core/", "azure-core"),
    ("/azure/identity/", "azure-identity"),
    ("/azure/functions/", "azure-functions"),
    ("/httpx/", "httpx"),
    ("/httpcore/", "httpcore"),
    ("/aiohttp/", "aiohttp"),
    ("/yarl/", "yarl"),
    ("/multidict/", "multidict"),
    ("/email/", "stdlib email (multipart parsing)"),
    ("/http/client.py", "stdlib http.client (multipart building)"),
    ("/asyncio/", "asyncio"),
    ("/ssl.py", "ssl"),
    ("/json/", "json"),
)


# Stages of a delivery: (label, file fragment, function name); cumulative time of each entry point.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("WNS POST: the app's WNS HTTP client (libcurl: HTTP/1.1 + TLS in C)", "pushfuncs/http_transport.py", "post"),
    ("App: channel allow-list check at send time", "pushfuncs/channel_uri.py", "check_channel_uri_at_send"),
    ("Table writes: outcomes (insert or merge through the table client's pipeline)", "plain_write.py", "merge_row"),
    ("Table writes: batch claims (azure-data-tables create)", "_table_client_async.py", "create_entity"),
    ("App: WNS headers + correlation vector", "pushfuncs/wns.py", "build_wns_headers"),
    ("App: classify WNS response", "pushfuncs/wns.py", "classify_wns_response"),
    ("App: settle outcomes", "pushfuncs/services/delivery.py", "_settle"),
    ("App: parse queue message", "pushfuncs/services/messages.py", "parse_delivery_message"),
    ("Queue delete (the host stand-in's thread; the host's in Azure)", "_queue_client_async.py", "delete_message"),
)


@dataclass
class Profile:
    total: float
    idle: float = 0.0
    stages: list[tuple[str, float]] = field(default_factory=list)
    by_package: list[tuple[str, float]] = field(default_factory=list)
    hot_functions: list[tuple[str, float, int]] = field(default_factory=list)


def package_of(filename: str, function: str) -> str:
    for fragment, name in PACKAGES:
        if fragment in filename:
            return name
    if filename == "~":
        if "ssl" in function.lower() or "_ssl" in function:
            return "ssl (OpenSSL)"
        if "select" in function or "epoll" in function:
            return "event loop wait (epoll)"
        if "pycurl" in function:
            return "libcurl (pycurl: HTTP/1.1 + TLS)"
        return "builtins"
    return "other"


def short_name(filename: str) -> str:
    """A file name without this machine's directories: package-relative, or stdlib/..."""
    if "site-packages/" in filename:
        return filename.rsplit("site-packages/", 1)[1]
    if "/lib/python3" in filename:
        return "stdlib/" + filename.rsplit("/lib/python3", 1)[1].split("/", 1)[-1]
    root = str(ROOT) + "/"
    if filename.startswith(root):
        return filename[len(root) :]
    return filename.rsplit("/", 1)[-1]


def summarize(stats: pstats.Stats, top: int = 12) -> Profile:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    by_package: dict[str, float] = defaultdict(float)
    functions: list[tuple[str, float, int]] = []
    total = 0.0
    for (filename, line, name), (_cc, calls, tottime, _cumtime, _callers) in raw.items():
        total += tottime
        by_package[package_of(filename, name)] += tottime
        short = short_name(filename)
        functions.append((f"{short}:{line} {name}", tottime, calls))
    cumulative: dict[str, float] = defaultdict(float)
    idle = 0.0
    for (filename, _line, name), (_cc, _calls, tottime, cumtime, _callers) in raw.items():
        for label, fragment, function in STAGES:
            if name == function and fragment in filename:
                cumulative[label] += cumtime
        if filename == "~" and "epoll" in name:
            idle += tottime
    stages = [(label, cumulative.get(label, 0.0)) for label, _f, _n in STAGES]
    functions.sort(key=lambda f: f[1], reverse=True)
    packages = sorted(by_package.items(), key=lambda p: p[1], reverse=True)
    return Profile(total=total, idle=idle, stages=stages, by_package=packages, hot_functions=functions[:top])


async def profiled(run: Callable[[], Awaitable[Any]]) -> tuple[Any, Profile]:
    """Run a coroutine under cProfile (the whole event loop's work while it runs)."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        result = await run()
    finally:
        profiler.disable()
    return result, summarize(pstats.Stats(profiler))
