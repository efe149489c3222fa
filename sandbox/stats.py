"""Request counters exposed at GET /_sandbox/stats."""

from __future__ import annotations

from collections import Counter
from typing import Any


class Stats:
    def __init__(self) -> None:
        self.token_requests: Counter[str] = Counter()
        self.msi_requests: Counter[str] = Counter()
        self.wns_status: Counter[int] = Counter()
        self.wns_outcome: Counter[str] = Counter()
        self.key_vault: Counter[str] = Counter()
        self.channels_created = 0
        self.jwks_requests = 0

    def snapshot(self, active_channels: int) -> dict[str, Any]:
        return {
            "tokenRequests": {
                "total": self.token_requests["issued"] + self.token_requests["rejected"],
                "byGrant": _strip(self.token_requests, "grant:"),
                "byCredential": _strip(self.token_requests, "credential:"),
                "issued": self.token_requests["issued"],
                "rejected": self.token_requests["rejected"],
            },
            "msiRequests": dict(self.msi_requests) | {"total": sum(self.msi_requests.values())},
            "wnsSends": {
                "total": sum(self.wns_status.values()),
                "byStatus": {str(k): v for k, v in sorted(self.wns_status.items())},
                "byOutcome": dict(self.wns_outcome),
            },
            "keyVault": {key: self.key_vault[key] for key in ("reads", "writes", "deletes", "challenges", "rejected")},
            "channels": {"created": self.channels_created, "active": active_channels},
            "jwksRequests": self.jwks_requests,
        }


def _strip(counter: Counter[str], prefix: str) -> dict[str, int]:
    return {k.removeprefix(prefix): v for k, v in counter.items() if k.startswith(prefix)}
