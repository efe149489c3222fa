"""Test harness: run the app's functions as the Functions host would, against Azurite and the sandbox."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions.queue import QueueMessage as HostQueueMessage
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

import function_app
from pushfuncs.config import applied_settings
from pushfuncs.context import finish_background_sends
from pushfuncs.host_config import max_dequeue_count

# get_functions() may be called once per app object.
FUNCTIONS = {f.get_function_name(): f for f in function_app.app.get_functions()}


async def call_function(name: str, **kwargs: Any) -> Any:
    result = FUNCTIONS[name].get_user_function()(**kwargs)
    return await result if inspect.isawaitable(result) else result


def http_request(
    method: str,
    route: str,
    body: object = None,
    route_params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> func.HttpRequest:
    if isinstance(body, bytes):
        raw = body
    elif body is None:
        raw = b""
    else:
        raw = json.dumps(body).encode()
    return func.HttpRequest(
        method=method,
        url=f"http://localhost:7071/api/{route}",
        headers={"content-type": "application/json", **(headers or {})},
        params={},
        route_params=route_params or {},
        body=raw,
    )


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str]


async def call_http(name: str, method: str, route: str, body: object = None, **route_params: str) -> Response:
    response: func.HttpResponse = await call_function(
        name, req=http_request(method, route, body, route_params=route_params)
    )
    raw = response.get_body()
    parsed = json.loads(raw) if raw else None
    return Response(response.status_code, parsed, dict(response.headers))


@contextmanager
def app_environment(azurite: Any, sandbox: Any, **overrides: str) -> Iterator[dict[str, str]]:
    """Point the app's settings at Azurite and the sandbox, with queues of its own."""
    suffix = uuid.uuid4().hex[:10]
    values = {
        "AzureWebJobsStorage": azurite.connection_string,
        "DELIVERY_QUEUE": f"delivery-{suffix}",
        "FANOUT_QUEUE": f"fanout-{suffix}",
        "INSTALLATIONS_TABLE": f"inst{suffix}",
        "NOTIFICATIONS_TABLE": f"notif{suffix}",
        "INDEX_TABLE": f"index{suffix}",
        "DELIVERY_MAX_ATTEMPTS": "4",
        **sandbox.environment(),
        "WNS_CLIENT_CERTIFICATE_PATH": "",
        "KEY_VAULT_URL": "",  # a per-process token unless a test asks for the shared one
        "WNS_TOKEN_SECRET_NAME": f"wns-token-{suffix}",
    }
    values.update(overrides)
    with applied_settings(values):
        yield values


class QueueDriver:
    """Feeds a queue's messages to a queue-triggered function with the host's semantics:
    base64 bodies, dequeue count, visibility timeout on failure, poison after maxDequeueCount."""

    def __init__(self, connection_string: str, queue: str, function: str, visibility_on_failure: int = 1) -> None:
        self.queue = QueueClient.from_connection_string(
            connection_string,
            queue,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )
        self.poison = QueueClient.from_connection_string(
            connection_string, f"{queue}-poison", message_encode_policy=TextBase64EncodePolicy()
        )
        self.connection_string = connection_string
        self.function = function
        self.visibility_on_failure = visibility_on_failure
        self.invocations = 0
        self.failures = 0
        self.errors: list[str] = []

    async def run_once(self) -> int:
        """Finish the sends started in the background, then process one batch of visible
        messages; returns how many messages were processed."""
        await finish_background_sends()
        batch = [
            m async for m in self.queue.receive_messages(messages_per_page=32, max_messages=32, visibility_timeout=60)
        ]

        async def handle(message: Any) -> None:
            host_message = HostQueueMessage(
                id=message.id,
                body=message.content.encode("utf-8"),
                dequeue_count=message.dequeue_count,
                pop_receipt=message.pop_receipt,
            )
            self.invocations += 1
            try:
                await call_function(self.function, msg=host_message)
            except Exception as error:
                self.failures += 1
                self.errors.append(f"{type(error).__name__}: {error}"[:500])
                if message.dequeue_count >= max_dequeue_count():
                    if not await self._exists(self.poison):
                        await self.poison.create_queue()
                    await self.poison.send_message(message.content)
                    await self.queue.delete_message(message)
                else:
                    await self.queue.update_message(message, visibility_timeout=self.visibility_on_failure)
                return
            await self.queue.delete_message(message)

        await asyncio.gather(*(handle(m) for m in batch))
        return len(batch)

    @staticmethod
    async def _exists(client: QueueClient) -> bool:
        try:
            await client.get_queue_properties()
        except Exception:
            return False
        return True

    async def pending(self) -> int:
        return (await self.queue.get_queue_properties()).approximate_message_count

    async def drain(self, timeout: float = 30.0) -> None:
        """Run until the queue (visible and delayed messages alike) is empty."""
        deadline = time.monotonic() + timeout
        while True:
            processed = await self.run_once()
            if not processed:
                if await self.pending() == 0:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"queue {self.queue.queue_name} still has {await self.pending()} messages")
                await asyncio.sleep(0.2)

    async def poison_messages(self) -> list[str]:
        if not await self._exists(self.poison):
            return []
        decoder = QueueClient.from_connection_string(
            self.connection_string, self.poison.queue_name, message_decode_policy=TextBase64DecodePolicy()
        )
        async with decoder:
            return [m.content for m in await decoder.peek_messages(max_messages=32)]

    async def close(self) -> None:
        await self.queue.close()
        await self.poison.close()


async def refuse_outcome_writes(*args: object, **kwargs: object) -> None:
    """Stands in for `NotificationStore.record_outcomes` when storage refuses every write."""
    raise RuntimeError("storage refused the write (injected fault)")
