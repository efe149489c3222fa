"""Queue storage for the local host: connection settings, message encoding and shared async clients."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

log = logging.getLogger("devhost")

DEFAULT_CONNECTION = "AzureWebJobsStorage"
# .NET's base64 decoder skips these; Python's strict decoder would not.
_BASE64_WHITESPACE = str.maketrans("", "", " \t\r\n")


class ConnectionSettingError(ValueError):
    """A binding's `connection` names no usable connection string."""


class MessageDecodeError(ValueError):
    """A message body is not valid under the configured messageEncoding."""


def connection_string(setting: str | None, environ: Mapping[str, str]) -> str:
    """The connection string a binding's `connection` names (`X`, else `AzureWebJobsX`), as the host reads it."""
    name = setting or DEFAULT_CONNECTION
    for candidate in (name, f"AzureWebJobs{name}"):
        value = environ.get(candidate)
        if value:
            return value
    if any(key.startswith(f"{name}__") for key in environ):
        raise ConnectionSettingError(
            f"'{name}' is an identity-based connection; the local host supports connection strings only"
        )
    raise ConnectionSettingError(f"the connection setting '{name}' is not defined")


def encode_message(content: str | bytes, encoding: str) -> str:
    """The wire text of one message: base64 of its UTF-8 bytes, or the text itself under `none`."""
    raw = content.encode("utf-8") if isinstance(content, str) else content
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    return raw.decode("utf-8") if isinstance(content, bytes) else content


def decode_message(text: str, encoding: str) -> bytes:
    """The body bytes of a received message; MessageDecodeError if it is not valid base64."""
    if encoding != "base64":
        return text.encode("utf-8")
    try:
        return base64.b64decode(text.translate(_BASE64_WHITESPACE), validate=True)
    except (binascii.Error, ValueError):
        raise MessageDecodeError("the message is not valid base64") from None


def output_messages(value: Any) -> list[str | bytes]:
    """The messages a queue output value stands for, following the Python worker's rules."""
    if value is None:
        return []
    if isinstance(value, str | bytes):
        return [value]
    if isinstance(value, func.QueueMessage):
        return [value.get_body()]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        messages: list[str | bytes] = []
        for item in value:
            if isinstance(item, str):
                messages.append(item)
            elif isinstance(item, func.QueueMessage):
                messages.append(item.get_body())
            else:
                raise TypeError(f"invalid data type in output queue message list: {type(item)}")
        return messages
    raise TypeError(f"a queue output cannot be a {type(value).__name__}")


class QueueClients:
    """One async QueueClient per (connection string, queue), reused for the host's lifetime."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], QueueClient] = {}

    def get(self, connection: str, queue: str) -> QueueClient:
        key = (connection, queue)
        if key not in self._clients:
            self._clients[key] = QueueClient.from_connection_string(connection, queue)
        return self._clients[key]

    async def create_if_missing(self, connection: str, queue: str) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self.get(connection, queue).create_queue()

    async def send(self, connection: str, queue: str, texts: Iterable[str]) -> None:
        """Send already-encoded messages, creating the queue first if it does not exist."""
        client = self.get(connection, queue)
        for text in texts:
            try:
                await client.send_message(text)
            except ResourceNotFoundError:
                await self.create_if_missing(connection, queue)
                await client.send_message(text)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
