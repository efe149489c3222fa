"""The delivery queue: JSON messages, base64-encoded as the Functions host expects."""

from __future__ import annotations

import contextlib
import json

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

# Storage queues refuse visibility delays beyond seven days.
MAX_DELAY_SECONDS = 7 * 24 * 3600 - 60


class MessageQueue:
    def __init__(self, service: QueueServiceClient, name: str) -> None:
        self.name = name
        self._client: QueueClient = service.get_queue_client(name, message_encode_policy=TextBase64EncodePolicy())

    async def send(self, message: dict[str, object], delay_seconds: float = 0) -> None:
        delay = int(min(max(delay_seconds, 0), MAX_DELAY_SECONDS))
        await self._client.send_message(
            json.dumps(message, separators=(",", ":")),
            visibility_timeout=delay or None,
            time_to_live=-1,
        )

    async def send_text(self, text: str) -> None:
        await self._client.send_message(text, time_to_live=-1)

    async def create_if_missing(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self._client.create_queue()
