"""The long-lived objects one process shares across invocations, built lazily on first use.

Async clients belong to the event loop that created them, so there is one context per loop
(the Functions worker has one; tests may have several).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref

from azure.core.exceptions import ResourceExistsError

from pushfuncs.background import BackgroundTasks
from pushfuncs.config import Settings, get_settings
from pushfuncs.http_transport import WnsHttpClient
from pushfuncs.services.suspension import SendingSwitch
from pushfuncs.services.tokens import EntraTokenSource, TokenVault, WnsTokenProvider
from pushfuncs.storage.clients import StorageClients, create_storage_clients
from pushfuncs.storage.index import IndexStore
from pushfuncs.storage.installations import InstallationStore
from pushfuncs.storage.notifications import NotificationStore
from pushfuncs.storage.queues import MessageQueue

logger = logging.getLogger(__name__)


class AppContext:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage: StorageClients = create_storage_clients(settings)
        tables = self.storage.tables
        self.installations = InstallationStore(tables.get_table_client(settings.installations_table))
        self.index_table = tables.get_table_client(settings.index_table)
        self.index = IndexStore(self.index_table)
        notifications_table = tables.get_table_client(settings.notifications_table)
        self.notifications = NotificationStore(notifications_table)
        self.sending = SendingSwitch(notifications_table)
        self.delivery_queue = MessageQueue(self.storage.queues, settings.delivery_queue)
        self.poison_queue = MessageQueue(self.storage.queues, settings.poison_queue)
        self.fanout_queue = MessageQueue(self.storage.queues, settings.fanout_queue)
        self.fanout_poison_queue = MessageQueue(self.storage.queues, f"{settings.fanout_queue}-poison")
        # Sends started by the send API, finished after it has answered.
        self.background = BackgroundTasks()
        self._http: WnsHttpClient | None = None
        self._tokens: WnsTokenProvider | None = None
        self._ready = False
        self._ready_lock = asyncio.Lock()

    @property
    def http(self) -> WnsHttpClient:
        """One pooled HTTP client per process for every WNS send; never follows redirects."""
        if self._http is None:
            self._http = WnsHttpClient()
        return self._http

    @property
    def tokens(self) -> WnsTokenProvider:
        if self._tokens is None:
            s = self.settings
            vault = TokenVault(s.key_vault_url, s.token_secret_name) if s.key_vault_url else None
            self._tokens = WnsTokenProvider(EntraTokenSource(s), vault)
        return self._tokens

    async def ensure_storage(self) -> None:
        """Create tables and queues once per process (Bicep creates them in Azure)."""
        if self._ready:
            return
        async with self._ready_lock:
            if self._ready:
                return
            s = self.settings
            for table in (s.installations_table, s.notifications_table, s.index_table):
                with contextlib.suppress(ResourceExistsError):
                    await self.storage.tables.create_table(table)
            for queue in (self.delivery_queue, self.poison_queue, self.fanout_queue, self.fanout_poison_queue):
                await queue.create_if_missing()
            self._ready = True

    async def close(self) -> None:
        try:
            await self.background.drain(timeout=30)
        except TimeoutError:
            logger.warning("%d sends still running at shutdown; outbox recovery will queue them", len(self.background))
        if self._http is not None:
            await self._http.close()
        if self._tokens is not None:
            await self._tokens.close()
        await self.storage.close()


_contexts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AppContext] = weakref.WeakKeyDictionary()


async def get_context() -> AppContext:
    """The context of the running event loop, created (and storage ensured) on first use."""
    loop = asyncio.get_running_loop()
    context = _contexts.get(loop)
    if context is None:
        context = AppContext(get_settings())
        _contexts[loop] = context
    await context.ensure_storage()
    return context


async def finish_background_sends(timeout: float | None = 30.0) -> None:
    """Wait for the sends the running loop's context started after answering (tests, benchmark)."""
    context = _contexts.get(asyncio.get_running_loop())
    if context is not None:
        await context.background.drain(timeout)


async def close_context() -> None:
    """Close and forget the running loop's context (tests, local host shutdown)."""
    context = _contexts.pop(asyncio.get_running_loop(), None)
    if context is not None:
        await context.close()
