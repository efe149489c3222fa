"""A small app exercising every trigger and binding the local host supports.

Queue names and the timer schedule come from settings (`%WORK_QUEUE%` ...), so each test picks
its own. Functions record what they received in `RECORDER`, which tests read and reset.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

http_bp = func.Blueprint()
queue_bp = func.Blueprint()
timer_bp = func.Blueprint()


@dataclass
class Recorder:
    """What the functions saw, shared between the host's threads and the test."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    work: list[dict[str, Any]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    ticks: list[func.TimerRequest] = field(default_factory=list)
    fail_ticks: bool = False
    running: int = 0
    max_running: int = 0
    slow_starts: list[float] = field(default_factory=list)
    slow_ends: list[float] = field(default_factory=list)

    def reset(self) -> None:
        with self.lock:
            self.work.clear()
            self.text.clear()
            self.ticks.clear()
            self.running = self.max_running = 0
            self.fail_ticks = False
            self.slow_starts.clear()
            self.slow_ends.clear()


RECORDER = Recorder()


@http_bp.route(route="items/{category:alpha}/{id:int}", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
@http_bp.queue_output(arg_name="outbox", queue_name="%OUT_QUEUE%", connection="AzureWebJobsStorage")
def items(req: func.HttpRequest, outbox: func.Out[list[str]]) -> func.HttpResponse:
    if req.method == "POST":
        outbox.set([line for line in req.get_body().decode().splitlines() if line])
    reply = {
        "method": req.method,
        "route": dict(req.route_params),
        "q": req.params.get("q"),
        "header": req.headers.get("x-sample"),
    }
    response = func.HttpResponse(
        json.dumps(reply), status_code=201 if req.method == "POST" else 200, mimetype="application/json"
    )
    response.headers.add_header("X-Multi", "one")
    response.headers.add_header("X-Multi", "two")
    return response


@http_bp.route(route="hello/{name?}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def hello(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0)
    return func.HttpResponse(f"hello {req.route_params.get('name', 'world')}")


@http_bp.route(route="things/{id:guid}", auth_level=func.AuthLevel.ANONYMOUS)
def thing(req: func.HttpRequest) -> str:
    return f"thing {req.route_params['id']}"


@http_bp.route(route="files/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def files(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.route_params.get("path", ""))


@http_bp.route(route="ops/reindex", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
def reindex(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=202)


@http_bp.route(route="boom", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("the sample failed on purpose")


@queue_bp.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    body = msg.get_body().decode()
    with RECORDER.lock:
        RECORDER.work.append({"body": body, "dequeue_count": msg.dequeue_count, "id": msg.id})
    if body.startswith("fail"):
        raise RuntimeError(f"told to fail: {body}")


@queue_bp.queue_trigger(arg_name="text", queue_name="%TEXT_QUEUE%", connection="AzureWebJobsStorage")
def text_queue(text: str) -> None:
    with RECORDER.lock:
        RECORDER.text.append(text)


@queue_bp.queue_trigger(arg_name="msg", queue_name="%SLOW_QUEUE%", connection="AzureWebJobsStorage")
async def slow(msg: func.QueueMessage) -> None:
    """Runs for the number of seconds in its body, tracking how many run at once."""
    with RECORDER.lock:
        RECORDER.running += 1
        RECORDER.max_running = max(RECORDER.max_running, RECORDER.running)
        RECORDER.slow_starts.append(time.monotonic())
    try:
        await asyncio.sleep(float(msg.get_body()))
    finally:
        with RECORDER.lock:
            RECORDER.running -= 1
            RECORDER.slow_ends.append(time.monotonic())


@timer_bp.timer_trigger(arg_name="timer", schedule="%TICK_SCHEDULE%", run_on_startup=True)
def tick(timer: func.TimerRequest) -> None:
    with RECORDER.lock:
        RECORDER.ticks.append(timer)
    if RECORDER.fail_ticks:
        raise RuntimeError("the timer failed on purpose")


def create_app() -> func.FunctionApp:
    """A fresh app: the host reads get_functions(), which an app object allows only once."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(http_bp)
    app.register_functions(queue_bp)
    app.register_functions(timer_bp)
    return app
