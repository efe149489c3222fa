"""The whole benchmark, in order: throughput against baselines, operations, cost, latency, growth."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import costs, external, loops
from bench.app import INSTANCES, fresh_instance
from bench.counting import describe, storage_counter, total
from bench.critical_path import Run as CriticalPath
from bench.critical_path import count_broadcast
from bench.engine import EngineResult, run_engine
from bench.latency import LatencyResult, devhost_available, measure_devhost, measure_in_process
from bench.profiling import Profile, profiled
from bench.report import Report, status
from bench.sends import (
    GrowthResult,
    SendCost,
    broadcast_send,
    single_sends,
    single_sends_under_load,
    tag_fanout_available,
    tag_send,
)
from bench.services import Services, create_channels, start_services


@dataclass(frozen=True)
class Sizes:
    channels: int
    engine: int
    # Deliveries before each engine measurement, on its instance: enough messages that the host's
    # 24 at once x 8 sends each open the WNS client's connections (its peak is reached only now and
    # then, so several times the 24 messages), so no TLS handshake is in the figures (the client
    # loops, npm wns and pyreqwest likewise open theirs before measuring).
    engine_warm_up: int
    rounds: int
    aiohttp: int
    httpx: int
    dpn: int
    clients: int
    client_rounds: int
    profile: int
    singles: int
    singles_load: int
    growth: tuple[int, ...]
    growth_if_time: tuple[int, ...]
    broadcast: int  # installations of the broadcast run end to end
    critical_path: int  # installations of the broadcast counted on the virtual clock
    latency_rate: float
    latency_count: int
    budget_seconds: float


SMOKE = Sizes(
    channels=300,
    engine=300,
    engine_warm_up=200,
    rounds=1,
    aiohttp=300,
    httpx=100,
    dpn=50,
    clients=300,
    client_rounds=1,
    profile=200,
    singles=2,
    singles_load=32,
    growth=(200,),
    growth_if_time=(),
    broadcast=200,
    critical_path=10_000,
    latency_rate=5.0,
    latency_count=10,
    budget_seconds=55.0,
)
FULL = Sizes(
    channels=12_000,
    engine=10_000,
    engine_warm_up=6_000,
    rounds=3,
    aiohttp=20_000,
    httpx=3_000,
    dpn=2_000,
    clients=10_000,
    client_rounds=3,
    profile=3_000,
    singles=20,
    singles_load=1_000,
    growth=(1_000, 10_000),
    growth_if_time=(100_000,),
    broadcast=100_000,
    critical_path=1_000_000,
    latency_rate=20.0,
    latency_count=300,
    budget_seconds=570.0,
)


@dataclass
class Options:
    smoke: bool
    baselines: bool
    command: str
    state_dir: Path
    work_dir: Path


@dataclass
class Results:
    engine: list[EngineResult] = field(default_factory=list)
    aiohttp: list[loops.LoopResult] = field(default_factory=list)
    others: list[loops.LoopResult] = field(default_factory=list)
    # HTTP clients alone, measured in interleaved rounds: name -> one result per round.
    clients: dict[str, list[loops.LoopResult]] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)
    single: SendCost | None = None
    single_load: SendCost | None = None
    growth: list[GrowthResult] = field(default_factory=list)
    growth_skipped: dict[int, str] = field(default_factory=dict)
    broadcast: GrowthResult | None = None
    broadcast_skipped: str = ""
    critical_path: CriticalPath | None = None
    latency: LatencyResult | None = None
    profile: Profile | None = None
    process_metrics: dict[str, int] = field(default_factory=dict)


def log(message: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


async def run(options: Options) -> Report:
    sizes = SMOKE if options.smoke else FULL
    started = time.perf_counter()
    log("starting Azurite and the WNS sandbox")
    services = await asyncio.to_thread(start_services, options.state_dir)
    storage_counter.install(services.azurite.queue_port, services.azurite.table_port)
    results = Results()
    try:
        await _measure(services, sizes, options, results, started)
    finally:
        from pushfuncs.context import close_context

        await close_context()
        storage_counter.uninstall()
        services.stop()
    report = build_report(results, sizes, options)
    report.seconds = time.perf_counter() - started
    return report


async def _measure(services: Services, sizes: Sizes, options: Options, results: Results, started: float) -> None:
    from pushfuncs.metrics import metrics

    sandbox = services.sandbox
    log(f"creating {sizes.channels} sandbox channels")
    channel_map = await create_channels(sandbox, sizes.channels)
    channels = list(channel_map)
    channels_file = options.work_dir / "channels.json"
    channels_file.write_text(json.dumps(channels))
    token = sandbox.token()
    # Every app instance of the run shares one WNS token through Key Vault, as deployed.
    secret = f"wns-token-bench-{uuid.uuid4().hex[:8]}"
    metrics.reset()

    for round_number in range(sizes.rounds):
        async with fresh_instance(services, secret):
            log(f"round {round_number + 1}/{sizes.rounds}: warming up a new instance (token, connections)")
            await run_engine(services, channels, sizes.engine_warm_up)
            log(f"round {round_number + 1}/{sizes.rounds}: bare aiohttp loop, {sizes.aiohttp} sends")
            results.aiohttp.append(
                await loops.measured(
                    "Bare aiohttp ClientSession loop, C=100",
                    lambda steady: loops.aiohttp_loop(channels, token, sandbox.ca_path, sizes.aiohttp, steady=steady),
                    sizes.aiohttp,
                    sandbox.process.pid,
                )
            )
            log(f"round {round_number + 1}/{sizes.rounds}: engine, {sizes.engine} deliveries")
            results.engine.append(await run_engine(services, channels, sizes.engine))

    log(f"bare httpx loop, {sizes.httpx} sends")
    results.others.append(
        await loops.measured(
            "Bare httpx.AsyncClient loop, C=100",
            lambda steady: loops.httpx_loop(channels, token, sandbox.ca_path, sizes.httpx, steady=steady),
            sizes.httpx,
            sandbox.process.pid,
        )
    )
    await _measure_clients(services, channels, channels_file, token, sizes, options, results)

    if options.baselines:
        log(f"django-push-notifications, {sizes.dpn} sends (installs into bench/.env on first use)")
        try:
            results.others.append(
                await external.run_django_push_notifications(sandbox, channels_file, sizes.dpn, options.state_dir)
            )
        except external.NotRun as error:
            results.not_run["django-push-notifications 3.3.0 (WNS sender)"] = str(error)
    else:
        results.not_run["django-push-notifications 3.3.0 (WNS sender)"] = "not run: --no-baselines"

    async with fresh_instance(services, secret):
        log(f"single-installation sends end to end, {sizes.singles}")
        results.single = await single_sends(services, channels, sizes.singles)
    async with fresh_instance(services, secret):
        log(f"single-installation sends under load, {sizes.singles_load} POSTed 16 at a time")
        results.single_load = await single_sends_under_load(services, channels, sizes.singles_load)

    fanout = tag_fanout_available()
    if fanout:
        for count in sizes.growth:
            async with fresh_instance(services, secret):
                log(f"tag send to {count} installations (fan-out)")
                results.growth.append(await tag_send(services, channels, count))
    async with fresh_instance(services, secret):
        log(f"profiling the engine, {sizes.profile} deliveries")
        await run_engine(services, channels, sizes.engine_warm_up)
        _, results.profile = await profiled(lambda: run_engine(services, channels, sizes.profile))
    results.process_metrics = metrics.snapshot()

    if devhost_available():
        log(f"latency through the local Functions host: {sizes.latency_count} sends at {sizes.latency_rate}/s")
        results.latency = await measure_devhost(
            services, channel_map, sizes.latency_rate, sizes.latency_count, options.work_dir
        )
    else:
        async with fresh_instance(services, secret):
            log("latency in-process (the local host is not available)")
            results.latency = await measure_in_process(services, channel_map, sizes.latency_rate, sizes.latency_count)

    if fanout:
        for count in sizes.growth_if_time:
            estimate = _estimate_seconds(results.growth, count)
            remaining = sizes.budget_seconds - (time.perf_counter() - started)
            if estimate is None or estimate > remaining:
                results.growth_skipped[count] = (
                    f"not run: would take ~{estimate or 0:.0f} s at the measured rate; {remaining:.0f} s of the "
                    f"{sizes.budget_seconds:.0f} s budget left"
                )
                continue
            try:
                async with fresh_instance(services, secret):
                    log(f"tag send to {count} installations (fan-out)")
                    results.growth.append(await tag_send(services, channels, count))
            except Exception as error:  # an optional size: report it, keep the rest of the run
                results.growth_skipped[count] = f"not run to the end: {type(error).__name__}: {error}"[:300]
    else:
        for count in (*sizes.growth, *sizes.growth_if_time):
            results.growth_skipped[count] = "not yet: fan-out by tag not implemented"

    try:
        async with fresh_instance(services, secret):
            log(f"broadcast to {sizes.broadcast} installations (fan-out)")
            results.broadcast = await broadcast_send(services, channels, sizes.broadcast)
    except Exception as error:  # report it, keep the rest of the run
        results.broadcast_skipped = f"not run to the end: {type(error).__name__}: {error}"[:300]
    log(f"counting the critical path of a broadcast to {sizes.critical_path} installations (virtual clock)")
    results.critical_path = await asyncio.to_thread(count_broadcast, sizes.critical_path)


async def _measure_clients(
    services: Services,
    channels: list[str],
    channels_file: Path,
    token: str,
    sizes: Sizes,
    options: Options,
    results: Results,
) -> None:
    """The HTTP clients alone, in interleaved rounds (the machine's drift hits each alike)."""
    from pushfuncs.http_transport import AiohttpWnsClient, CurlWnsClient

    sandbox = services.sandbox
    count = sizes.clients

    def app_client(client_class: type) -> Callable[[Callable[[], None]], Awaitable[tuple[int, float]]]:
        return lambda steady: loops.app_client_loop(channels, token, count, client_class=client_class, steady=steady)

    def bare_aiohttp(steady: Callable[[], None]) -> Awaitable[tuple[int, float]]:
        return loops.aiohttp_loop(channels, token, sandbox.ca_path, count, steady=steady)

    in_process = [
        (CLIENT_CURL, app_client(CurlWnsClient)),
        (CLIENT_AIOHTTP, app_client(AiohttpWnsClient)),
        (CLIENT_BARE_AIOHTTP, bare_aiohttp),
    ]
    external_runs = [
        (external.NPM_WNS, "installs into bench/node_modules on first use", external.run_npm_wns),
        (external.PYREQWEST, "installs into bench/.env on first use", external.run_pyreqwest),
    ]
    if not options.baselines:
        for name, _, _ in external_runs:
            results.not_run[name] = "not run: --no-baselines"
    for round_number in range(sizes.client_rounds):
        prefix = f"HTTP clients round {round_number + 1}/{sizes.client_rounds}"
        for name, run_loop in in_process:
            log(f"{prefix}: {name}, {count} sends")
            result = await loops.measured(name, run_loop, count, sandbox.process.pid)
            results.clients.setdefault(name, []).append(result)
        if not options.baselines:
            continue
        for name, install_note, run_external in external_runs:
            if name in results.not_run:
                continue
            log(f"{prefix}: {name}, {count} sends ({install_note})")
            try:
                results.clients.setdefault(name, []).append(await run_external(sandbox, channels_file, count))
            except external.NotRun as error:
                results.not_run[name] = str(error)
                results.clients.pop(name, None)


CLIENT_CURL = "The app's WnsHttpClient (the default): libcurl multi on the event loop (pycurl 7.49.0), C=100"
CLIENT_AIOHTTP = "The app's aiohttp client (the fallback), C=100"
CLIENT_BARE_AIOHTTP = "Bare aiohttp ClientSession loop, C=100 (as in the engine rounds)"


def _cpu_per_send(result: loops.LoopResult) -> float:
    return result.client_cpu / result.ok * 1e6 if result.ok else 0.0


def _client_rows(report: Report, results: Results, engine: EngineResult, engine_cpu: float, process_cpu: float) -> None:
    """HTTP clients alone, each against npm wns's CPU per send measured in the same rounds."""
    if not results.clients:
        return
    rounds = max(len(r) for r in results.clients.values())
    report.section(
        f"HTTP clients alone: client CPU per POST (C=100, same channels, token and sandbox; {rounds} interleaved"
        " rounds, median and range)"
    )
    npm = results.clients.get(external.NPM_WNS)
    npm_cpu = statistics.median(_cpu_per_send(r) for r in npm) if npm else 0.0
    for name, runs in results.clients.items():
        cpus = [_cpu_per_send(r) for r in runs]
        rates = [r.rate for r in runs]
        ok, sent = sum(r.ok for r in runs), sum(r.sent for r in runs)
        notes = {r.note for r in runs if r.note}
        note = f"; {'; '.join(sorted(notes))}" if notes else ""
        per_round = []
        if npm and name != external.NPM_WNS:
            per_round = [_cpu_per_send(n) / c for n, c in zip(npm, cpus, strict=False) if c]
        versus = (
            f"{statistics.median(per_round):.2f}x npm wns's CPU efficiency (rounds: "
            + ", ".join(f"{x:.2f}x" for x in per_round)
            + ")"
            if per_round
            else ("baseline" if name == external.NPM_WNS else "")
        )
        report.add(
            name,
            f"{statistics.median(cpus):,.0f} us client CPU per send (range {min(cpus):,.0f}-{max(cpus):,.0f}); "
            f"{_rate(statistics.median(rates))} median ({ok:,}/{sent:,} ok{note})",
            versus,
            "",
        )
    for name, reason in results.not_run.items():
        if name in (external.NPM_WNS, external.PYREQWEST):
            report.add(name, reason if reason.startswith("not run") else f"not run: {reason}", "", "")
    # Medians over the engine rounds, as npm wns's is over its rounds (not the fastest round's).
    rounds = [r for r in results.engine if r.delivered]
    if rounds:
        engine_cpu = statistics.median(r.worker_cpu / r.delivered * 1e6 for r in rounds)
        process_cpu = statistics.median(r.client_cpu / r.delivered * 1e6 for r in rounds)
    if npm_cpu and engine_cpu:
        ratio = npm_cpu / engine_cpu
        per_round = ", ".join(f"{r.worker_cpu / r.delivered * 1e6:,.0f}" for r in rounds)
        report.add(
            "Engine vs npm wns in client CPU: npm wns's CPU per send / the worker's CPU per delivery (queue message"
            " in, POST, answer, outcome recorded; the message's receive and delete are the host's, made here by its"
            " stand-in on a thread of its own as the .NET host makes them in Azure); medians of the rounds",
            f"{ratio:.2f}x ({engine_cpu:,.0f} us vs {npm_cpu:,.0f} us; the worker's rounds: {per_round} us); with the"
            f" host stand-in's thread counted too: {npm_cpu / process_cpu:.2f}x ({process_cpu:,.0f} us)",
            ">= 1.0x (stretch 1.5x)",
            status(ratio >= 1.0),
        )
        npm_rate = statistics.median(r.rate for r in npm) if npm else 0.0
        report.add(
            "Engine vs npm wns in deliveries/s (best engine round / npm wns's median; both share the 2 cores with"
            " the sandbox, the engine also with Azurite)",
            f"{engine.rate / npm_rate:.2f}x" if npm_rate else "n/a",
            "> 1.0x",
            status(engine.rate > npm_rate) if npm_rate else "n/a",
        )
    else:
        report.add("Engine vs npm wns", "npm wns not run", ">= 1.0x", "n/a")


def _estimate_seconds(done: list[GrowthResult], count: int) -> float | None:
    if not done:
        return None
    largest = max(done, key=lambda g: g.installations)
    per_installation = (largest.cost.seconds + largest.setup_seconds) / largest.installations
    return per_installation * count * 1.2


def _best(items: list[loops.LoopResult]) -> loops.LoopResult:
    return max(items, key=lambda r: r.rate)


def _rate(value: float) -> str:
    return f"{value:,.0f}/s"


def build_report(results: Results, sizes: Sizes, options: Options) -> Report:
    report = Report(
        command=options.command,
        mode="smoke" if options.smoke else "full",
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        prices=list(costs.PRICE_SOURCES),
        prices_date=costs.PRICES_DATE,
        private_paths={str(options.state_dir): "<tmp>", str(options.work_dir): "<tmp>"},
    )
    engine = max(results.engine, key=lambda e: e.rate)
    aiohttp_best = _best(results.aiohttp)

    report.section("Throughput (TLS, same sandbox channels and token, same run)")
    ratio = engine.rate / aiohttp_best.rate if aiohttp_best.rate else 0.0
    cpu_per = engine.client_cpu / engine.delivered * 1e6 if engine.delivered else 0.0
    worker_per = engine.worker_cpu / engine.delivered * 1e6 if engine.delivered else 0.0
    azurite_per = engine.azurite_cpu / engine.delivered * 1e6 if engine.delivered else 0.0
    report.add(
        "Our engine: queue message in, WNS POST, response handled, outcomes recorded, message deleted",
        f"{_rate(engine.rate)} ({engine.delivered:,} deliveries in {engine.messages} messages of 100; "
        f"{cpu_per:,.0f} us client CPU per delivery, of which the worker's {worker_per:,.0f} us and the host "
        f"stand-in's {cpu_per - worker_per:,.0f} us; {azurite_per:,.0f} us Azurite CPU; "
        f"{ratio:.2f}x bare aiohttp)",
        f">= 0.5x bare aiohttp = {_rate(aiohttp_best.rate * 0.5)}",
        status(ratio >= 0.5),
    )
    paired = [e.rate / a.rate for e, a in zip(results.engine, results.aiohttp, strict=False) if a.rate]
    if len(paired) > 1:
        median = statistics.median(paired)
        report.add(
            "Engine vs bare aiohttp, paired by round (each round measures the baseline, then the engine, on one"
            " instance: the machine's drift between rounds cancels out)",
            f"median {median:.2f}x (rounds: {', '.join(f'{r:.2f}x' for r in paired)})",
            ">= 0.5x",
            status(median >= 0.5),
        )
    aiohttp_cpu = aiohttp_best.client_cpu / aiohttp_best.ok * 1e6 if aiohttp_best.ok else 0.0
    if cpu_per and aiohttp_cpu:
        report.add(
            "Engine vs bare aiohttp in client CPU per delivery (independent of Azurite and the machine's load)",
            f"{cpu_per:,.0f} us vs {aiohttp_cpu:,.0f} us: the engine's CPU-bound ceiling is "
            f"{aiohttp_cpu / cpu_per:.2f}x bare aiohttp",
            ">= 0.5x",
            status(aiohttp_cpu / cpu_per >= 0.5),
        )
    for loop in [aiohttp_best, *results.others]:
        per = loop.client_cpu / loop.ok * 1e6 if loop.ok else 0.0
        extra = f"; {loop.note}" if loop.note else ""
        report.add(
            loop.name,
            f"{_rate(loop.rate)} ({loop.ok:,}/{loop.sent:,} ok; {per:,.0f} us client CPU per send{extra})",
            "baseline" if loop is aiohttp_best else f"engine = {engine.rate / loop.rate:.2f}x" if loop.rate else "",
            "",
        )
    for name, reason in results.not_run.items():
        if name in (external.NPM_WNS, external.PYREQWEST):
            continue  # in the HTTP clients section
        report.add(name, reason if reason.startswith("not run") else f"not run: {reason}", "", "")
    _client_rows(report, results, engine, worker_per, cpu_per)

    report.section("Operations (the app's metrics; storage requests counted at the SDK transport)")
    single = results.single
    if single is not None:
        per_send = total(single.storage) / single.notifications
        report.add(
            "Single-installation send, storage transactions end to end (POST, send, outcome; on a warm instance:"
            " the sending-switch read, once per instance and minute, is left out like the host's empty polls)",
            f"{per_send:.2f} per send: {describe(_per(single.storage, single.notifications))}",
            "<= 3",
            status(per_send <= 3),
        )
    tag10k = next((g for g in results.growth if g.installations == 10_000), None)
    tag_any = tag10k or (max(results.growth, key=lambda g: g.installations) if results.growth else None)
    if tag_any is not None:
        per = total(tag_any.cost.storage) / tag_any.installations
        label = f"{tag_any.installations:,}-installation tag send, storage transactions per delivered notification"
        report.add(
            label,
            f"{per:.4f} ({describe(tag_any.cost.storage)}; {tag_any.cost.delivered:,} delivered)",
            "<= 0.1 (at 10,000)",
            status(per <= 0.1) if tag10k else "n/a (smaller size in this run)",
        )
    else:
        report.add("10,000-installation tag send, storage transactions per delivery", "not yet: no fan-out", "<= 0.1")
    engine_per = total(engine.deliver_ops + engine.enqueue_ops) / engine.delivered if engine.delivered else 0.0
    report.add(
        "Engine run (pre-built 100-target messages), storage transactions per delivery",
        f"{engine_per:.4f} ({describe(engine.enqueue_ops + engine.deliver_ops)})",
        "",
        "",
    )
    m = results.process_metrics
    delivered_total = m.get("wns.success", 0)
    entra = m.get("token.entra.requests", 0)
    reads = m.get("token.keyvault.reads", 0)
    report.add(
        "Entra token requests per delivery (the run's instances share one token through Key Vault)",
        f"{entra} for {delivered_total:,} deliveries (1 per {delivered_total // max(entra, 1):,})",
        "<= 1 per 10,000",
        status(entra == 0 or delivered_total / entra >= 10_000)
        if delivered_total >= 10_000
        else "n/a (fewer than 10,000 deliveries in this run)",
    )
    report.add(
        "Key Vault reads / writes per delivery",
        f"{reads} reads (one per new instance; {len(INSTANCES)} instances started), "
        f"{m.get('token.keyvault.writes', 0)} writes, for {delivered_total:,} deliveries",
        "",
        "",
    )
    if single is not None:
        report.add(
            "Function executions per delivery",
            f"single send {single.executions / single.deliveries:.2f}"
            + (
                f"; {tag_any.installations:,}-tag send {tag_any.cost.executions / tag_any.installations:.4f}"
                if tag_any
                else ""
            ),
            "",
            "",
        )

    report.section("Cost per million notifications (list prices, see below)")
    _cost_rows(report, results, engine, tag_any)

    report.section("Latency, POST /api/notifications to the sandbox inbox")
    lat = results.latency
    if lat is not None and lat.latencies_ms:
        where = (
            "through the local Functions host (python -m devhost host), real HTTP"
            if lat.mode == "devhost"
            else "in-process POST function call (local host not available)"
        )
        report.add(
            f"Single sends at a steady {lat.rate:g}/s, {where}",
            f"p50 {lat.percentile(50):,.0f} ms, p95 {lat.percentile(95):,.0f} ms, p99 {lat.percentile(99):,.0f} ms "
            f"({len(lat.latencies_ms)}/{lat.sent} delivered; POST answered in p50 "
            f"{lat.percentile(50, lat.post_ms):,.0f} ms)",
            "",
            "",
        )
    else:
        report.add("Single sends at a steady rate", "not measured", "", "")

    report.section("Growth: one tag send, time and operations per installation")
    for g in sorted(results.growth, key=lambda g: g.installations):
        report.add(
            f"{g.installations:,} installations in one tag",
            f"{g.cost.seconds:,.1f} s ({g.us_per_installation:,.0f} us per installation; CPU per installation: "
            f"client {g.cost.client_cpu / g.installations * 1e6:,.0f} us, Azurite "
            f"{g.cost.azurite_cpu / g.installations * 1e6:,.0f} us); "
            f"{total(g.cost.storage) / g.installations:.4f} storage transactions and "
            f"{g.cost.executions / g.installations:.4f} executions per installation; "
            f"{g.cost.delivered:,} delivered",
            "flat or falling per installation",
            "",
        )
    for count, reason in sorted(results.growth_skipped.items()):
        report.add(f"{count:,} installations in one tag", reason, "", "")
    _growth_verdict(report, results.growth)
    _tag_send_against_npm(report, results, tag10k)

    report.section("Broadcast to every installation")
    _broadcast_rows(report, results, engine)

    report.notes.extend(_notes(results, sizes, engine))
    if results.profile is not None:
        report.profile = _profile_lines(results.profile)
    return report


def _tag_send_against_npm(report: Report, results: Results, tag10k: GrowthResult | None) -> None:
    """Target: the app's CPU per delivered installation of a 10,000 tag send at most 2x npm wns's per send."""
    npm = results.clients.get(external.NPM_WNS)
    label = (
        "10,000-installation tag send vs npm wns: the app's CPU per delivered installation (POST, fan-out, delivery,"
        " SDKs, the host stand-in's queue reads) / npm wns's CPU per send (its median in the HTTP client rounds)"
    )
    if tag10k is None or not npm or not tag10k.cost.delivered:
        report.add(label, "not measured in this run", "<= 2x", "n/a")
        return
    npm_cpu = statistics.median(_cpu_per_send(r) for r in npm)
    app_cpu = tag10k.cost.client_cpu / tag10k.cost.delivered * 1e6
    ratio = app_cpu / npm_cpu if npm_cpu else 0.0
    report.add(label, f"{ratio:.2f}x ({app_cpu:,.0f} us vs {npm_cpu:,.0f} us)", "<= 2x", status(0 < ratio <= 2))


# The model of a 1,000,000-installation broadcast in Azure: stated figures, not measurements.
MODEL_ROUND_TRIP_SECONDS = 0.020  # one storage request within a region (10-20 ms)
MODEL_INSTANCES = 50  # Flex Consumption scales out to up to 1,000
MODEL_STORAGE_TPS = 20_000  # a storage account's transactions per second


def _broadcast_rows(report: Report, results: Results, engine: EngineResult) -> None:
    b = results.broadcast
    if b is not None:
        report.add(
            f'{b.installations:,}-installation broadcast (`"all": true`), end to end: POST, fan-out in 16 lanes, every'
            " delivery message deleted",
            f"{b.cost.seconds:,.1f} s ({b.cost.delivered:,} delivered, {b.cost.delivered / b.cost.seconds:,.0f}/s; "
            f"CPU per installation: app {b.cost.client_cpu / b.installations * 1e6:,.0f} us, Azurite "
            f"{b.cost.azurite_cpu / b.installations * 1e6:,.0f} us); {total(b.cost.storage) / b.installations:.4f} "
            f"storage transactions and {b.cost.executions / b.installations:.4f} executions per installation; set-up "
            f"(index rows written directly) {b.setup_seconds:,.0f} s",
            "measured end to end locally",
            status(b.cost.delivered == b.installations),
        )
    else:
        report.add("Broadcast end to end", results.broadcast_skipped or "not run", "measured end to end locally", "")
    path = results.critical_path
    if path is None:
        return
    report.add(
        f"{path.installations:,}-installation broadcast: sequential storage round trips on the critical path, from the"
        " fan-out message's dequeue to the last delivery batch queued (the app's own fan-out on a virtual clock where"
        " every storage call takes one round trip: `python -m bench.critical_path`)",
        f"{path.round_trips:,.0f} round trips ({path.fanout_messages:,} fan-out messages, {path.delivery_batches:,}"
        f" delivery batches, {path.storage_calls:,} storage calls)",
        "<= 250 (at 1,000,000)",
        status(path.round_trips <= 250) if path.installations >= 1_000_000 else "n/a (smaller size in this run)",
    )
    per_instance = engine.rate
    per_delivery = total(b.cost.storage) / b.installations if b is not None else 0.1
    expansion = path.round_trips * MODEL_ROUND_TRIP_SECONDS
    sends = path.installations / (MODEL_INSTANCES * per_instance) if per_instance else float("inf")
    storage = path.installations * per_delivery / MODEL_STORAGE_TPS
    seconds = expansion + max(sends, storage)
    report.add(
        f"Model: time to the last delivery of a {path.installations:,}-installation broadcast in Azure (stated, not"
        f" measured): critical path x {MODEL_ROUND_TRIP_SECONDS * 1000:.0f} ms + the larger of the sends ("
        f"{MODEL_INSTANCES} instances at this run's best engine rate per instance, which here shares 2 cores with"
        f" Azurite and the sandbox) and the storage transactions (this run's broadcast figure per delivery, at"
        f" {MODEL_STORAGE_TPS:,} per second per account)",
        f"{seconds:,.1f} s = {expansion:,.1f} s expansion + max({sends:,.1f} s sends at {per_instance:,.0f}/s per"
        f" instance, {storage:,.1f} s storage at {per_delivery:.4f} per delivery)",
        "< 60 s (at 1,000,000)",
        status(seconds < 60) if path.installations >= 1_000_000 else "n/a (smaller size in this run)",
    )


def _per(counts: Counter[str], n: int) -> Counter[str]:
    return Counter({k: round(v / n, 2) for k, v in counts.items()})  # type: ignore[misc]


def _cost_rows(report: Report, results: Results, engine: EngineResult, tag: GrowthResult | None) -> None:
    entra_free = "Entra token requests are free"
    key_vault_reads = results.process_metrics.get("token.keyvault.reads", 0) + results.process_metrics.get(
        "token.keyvault.writes", 0
    )
    delivered = max(results.process_metrics.get("wns.success", 0), 1)
    kv_per = key_vault_reads / delivered
    # Compute: instance memory x the time it spends executing, per delivery, at the engine's measured rate.
    engine_seconds = 1 / engine.rate if engine.rate else 0.0
    if tag is not None:
        queue, table = costs.split_storage(tag.cost.storage)
        per = costs.PerDelivery(
            queue_ops=queue / tag.installations,
            table_ops=table / tag.installations,
            key_vault_ops=kv_per,
            executions=tag.cost.executions / tag.installations,
            active_seconds=tag.cost.seconds / tag.installations,
        )
        cost = costs.cost_per_million(per)
        report.add(
            f"Tag sends ({tag.installations:,} installations), per million delivered",
            f"${cost.total:.4f} ({cost.breakdown()}; {entra_free})",
            f"< ${costs.NOTIFICATION_HUBS_BASIC_PER_MILLION:.2f} (Notification Hubs Basic)",
            status(cost.total < costs.NOTIFICATION_HUBS_BASIC_PER_MILLION),
        )
    queue, table = costs.split_storage(engine.enqueue_ops + engine.deliver_ops)
    per = costs.PerDelivery(
        queue_ops=queue / engine.delivered if engine.delivered else 0.0,
        table_ops=table / engine.delivered if engine.delivered else 0.0,
        key_vault_ops=kv_per,
        executions=engine.messages / engine.delivered if engine.delivered else 0.0,
        active_seconds=engine_seconds,
    )
    cost = costs.cost_per_million(per)
    report.add(
        "Batched deliveries (engine run), per million delivered",
        f"${cost.total:.4f} ({cost.breakdown()})",
        f"< ${costs.NOTIFICATION_HUBS_BASIC_PER_MILLION:.2f}",
        status(cost.total < costs.NOTIFICATION_HUBS_BASIC_PER_MILLION),
    )
    load = results.single_load
    if load is not None and load.delivered:
        queue, table = costs.split_storage(load.storage)
        per = costs.PerDelivery(
            queue_ops=queue / load.deliveries,
            table_ops=table / load.deliveries,
            key_vault_ops=kv_per,
            executions=load.executions / load.deliveries,
            active_seconds=load.seconds / load.deliveries,
        )
        cost = costs.cost_per_million(per)
        report.add(
            f"Single-installation sends under load ({load.delivered:,} sends, {load.delivered / load.seconds:,.0f}/s"
            " through POST and the send after it, retries through the queue), per million",
            f"${cost.total:.4f} ({cost.breakdown()}; {total(load.storage) / load.deliveries:.2f} storage "
            "transactions per send)",
            f"< ${costs.NOTIFICATION_HUBS_BASIC_PER_MILLION:.2f}",
            status(cost.total < costs.NOTIFICATION_HUBS_BASIC_PER_MILLION),
        )


def _growth_verdict(report: Report, growth: list[GrowthResult]) -> None:
    ordered = sorted(growth, key=lambda g: g.installations)
    if len(ordered) < 2:
        return
    sizes = " -> ".join(f"{g.installations:,}" for g in ordered)
    times = [g.us_per_installation for g in ordered]
    client = [g.cost.client_cpu / g.installations * 1e6 for g in ordered]
    ops = [total(g.cost.storage) / g.installations for g in ordered]
    # Flat: within 25% of the smallest size's figure (noise on a shared machine), or falling.
    report.add(
        f"Growth verdict, storage transactions and the app's CPU per installation ({sizes})",
        "ops: " + " -> ".join(f"{o:.4f}" for o in ops) + "; client CPU: " + " -> ".join(f"{c:,.0f} us" for c in client),
        "flat or falling",
        status(all(o <= ops[0] * 1.05 for o in ops[1:]) and all(c <= client[0] * 1.25 for c in client[1:])),
    )
    report.add(
        f"Growth verdict, wall time per installation ({sizes})",
        " -> ".join(f"{t:,.0f} us" for t in times) + " (includes Azurite, see notes)",
        "flat or falling",
        status(all(t <= times[0] * 1.25 for t in times[1:])),
    )


def _profile_lines(profile: Profile) -> list[str]:
    busy = max(profile.total - profile.idle, 1e-9)
    lines = [
        f"CPU time under cProfile (inflates call-heavy code): {profile.total:.1f} s, of which {profile.idle:.1f} s "
        "waiting in epoll. Cumulative time per stage, as a share of the busy time:",
        "",
        "| Stage | Seconds | Share |",
        "|---|---|---|",
    ]
    for label, seconds in profile.stages:
        lines.append(f"| {label} | {seconds:.2f} | {seconds / busy:.0%} |")
    lines += ["", "Own time by package:", "", "| Package | Seconds | Share |", "|---|---|---|"]
    for package, seconds in profile.by_package[:12]:
        lines.append(f"| {package} | {seconds:.2f} | {seconds / max(profile.total, 1e-9):.0%} |")
    lines += ["", "Hottest functions (own time):", "", "| Function | Seconds | Calls |", "|---|---|---|"]
    for name, seconds, calls in profile.hot_functions:
        lines.append(f"| `{name}` | {seconds:.2f} | {calls:,} |")
    return lines


def _notes(results: Results, sizes: Sizes, engine: EngineResult) -> list[str]:
    notes = [
        "All traffic is loopback. Azurite (Node, in memory), the WNS sandbox (aiohttp over TLS, its own process) and "
        "the measured client share the machine's cores; absolute rates drift with the machine's load, so every "
        "figure is judged against a baseline measured in the same run.",
        "Engine rounds (deliveries/s): "
        + ", ".join(f"{e.rate:,.0f}" for e in results.engine)
        + "; bare aiohttp rounds: "
        + ", ".join(f"{a.rate:,.0f}" for a in results.aiohttp)
        + " (best of each is in the table).",
        f"Engine CPU in its best round: client {engine.client_cpu:.1f} s (of which the host stand-in's thread "
        f"{engine.host_cpu:.1f} s), sandbox {engine.server_cpu:.1f} s, "
        f"Azurite {engine.azurite_cpu:.1f} s over "
        f"{engine.seconds:.1f} s wall; engine failures (message retried): {engine.failures}"
        + (f" {dict(engine.errors)}" if engine.errors else ""),
        "Storage transactions are counted per REST request at azure-core's aiohttp transport (after the SDK's "
        "retries, as billed), plus the host's own queue requests (receive with messages, delete); the host's polls "
        "of empty queues cost per instance and second, not per notification, and are left out.",
        "Storage requests that got no answer (connection errors on kept-alive connections Azurite had closed; "
        f"retried by the SDK, not billed, not counted above): {dict(storage_counter.unanswered) or 'none'}.",
        "Engine messages are built as the fan-out builds them (100 targets, claim first) and put on the delivery "
        "queue with the app's queue adapter; the host stand-in runs batchSize 16 / newBatchThreshold 8 from host.json.",
        "Cost model: Flex Consumption bills instance memory while it executes; the GB-s per delivery here is "
        f"{costs.FLEX_INSTANCE_GB:g} GB x the measured time per delivery on this machine (one instance), so a faster "
        "engine is also a cheaper one.",
        "django-push-notifications needs the legacy Live token endpoint; the sandbox has only Entra ID's, so the "
        "benchmark runs a legacy-token shim (HTTPS, loopback) that answers with a sandbox-issued token. On the "
        "Internet each of its per-send token requests is a round trip to login.live.com, so this flatters it.",
    ]
    notes.append(
        "Azurite (in memory) slows down as a table grows: its CPU per 100-entity transaction rose from ~40 ms at "
        "500 rows to ~130 ms at 18,000 rows in one table, when measured alone on this machine; Azure Table Storage "
        "has no such growth and its CPU is not the app's. Each measurement therefore runs on a new app instance with "
        "tables of its own (the WNS token is still shared through Key Vault), and Azurite's CPU is shown beside the "
        "client's. A tag send's own rows still grow its table, which is why its wall time per installation can rise "
        "with the audience while the app's CPU and operations per installation stay flat."
    )
    if sizes is SMOKE:
        notes.append("Smoke run: tiny sizes, to keep the command working; its figures are not meaningful.")
    return notes
