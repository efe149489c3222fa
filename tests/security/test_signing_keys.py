"""The signing key cache: rollover is picked up, forged kids cannot make us fetch on every request."""

from __future__ import annotations

from typing import Any

import jwt

from pushfuncs.signing_keys import SigningKeys
from sandbox import SandboxClient


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def jwks_requests(client: SandboxClient) -> int:
    return int(client.stats()["jwksRequests"])


async def test_unknown_kids_refetch_at_most_once_per_interval_and_rollover_is_picked_up(
    sandbox: Any, sandbox_client: SandboxClient
) -> None:
    clock = Clock()
    keys = SigningKeys(sandbox.url, ttl=3600, min_refetch=300, clock=clock)
    kid = jwt.get_unverified_header(sandbox_client.user_token("alice"))["kid"]
    before = jwks_requests(sandbox_client)
    assert isinstance(await keys.get(sandbox.tenant_id, kid), jwt.PyJWK)
    assert await keys.get(sandbox.tenant_id, kid) is not None
    assert jwks_requests(sandbox_client) == before + 1  # cached

    for forged in range(20):
        assert await keys.get(sandbox.tenant_id, f"forged-{forged}") is None
    assert jwks_requests(sandbox_client) == before + 1  # within the interval: no refetch

    new_kid = sandbox_client.rotate_signing_key()
    assert await keys.get(sandbox.tenant_id, new_kid) is None
    clock.now += 301
    assert await keys.get(sandbox.tenant_id, new_kid) is not None  # refetched once the interval passed
    assert await keys.get(sandbox.tenant_id, kid) is not None  # the previous key is still published
    assert jwks_requests(sandbox_client) == before + 2

    clock.now += 3600  # past the TTL, a known kid is refetched too
    assert await keys.get(sandbox.tenant_id, new_kid) is not None
    assert jwks_requests(sandbox_client) == before + 3


async def test_a_failed_refetch_keeps_the_keys_it_has(sandbox: Any, sandbox_client: SandboxClient) -> None:
    clock = Clock()
    keys = SigningKeys(sandbox.url, ttl=3600, min_refetch=0, clock=clock)
    kid = jwt.get_unverified_header(sandbox_client.user_token("alice"))["kid"]
    assert await keys.get(sandbox.tenant_id, kid) is not None
    keys._authority = "https://127.0.0.1:9"  # nothing listens there
    clock.now += 7200
    assert await keys.get(sandbox.tenant_id, kid) is not None
