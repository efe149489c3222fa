"""Access tokens the sandbox issued, with audience, owner and expiry."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from . import ids

# Expired tokens are kept this long so a late send still gets "Token expired", not "Invalid token".
_KEEP_EXPIRED_SECONDS = 24 * 3600
_PRUNE_EVERY = 1024


class TokenCheck(enum.Enum):
    VALID = "valid"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    WRONG_AUDIENCE = "wrong_audience"


@dataclass(slots=True)
class IssuedToken:
    audience: str
    client_id: str
    credential: str
    issued_at: float
    expires_at: float
    revoked: bool = False


class TokenStore:
    """In-memory token registry; only the server's event loop touches it."""

    def __init__(self) -> None:
        self._tokens: dict[str, IssuedToken] = {}
        self._issued_since_prune = 0

    def issue(self, audience: str, client_id: str, credential: str, lifetime: int) -> tuple[str, IssuedToken]:
        now = time.time()
        token = ids.access_token()
        info = IssuedToken(audience, client_id, credential, now, now + lifetime)
        self._tokens[token] = info
        self._issued_since_prune += 1
        if self._issued_since_prune >= _PRUNE_EVERY:
            self._prune(now)
        return token, info

    def check(self, token: str, audience: str) -> tuple[TokenCheck, IssuedToken | None]:
        info = self._tokens.get(token)
        if info is None:
            return TokenCheck.UNKNOWN, None
        if info.audience != audience:
            return TokenCheck.WRONG_AUDIENCE, info
        if info.revoked:
            return TokenCheck.REVOKED, info
        if time.time() >= info.expires_at:
            return TokenCheck.EXPIRED, info
        return TokenCheck.VALID, info

    def revoke(self, audience: str) -> int:
        count = 0
        for info in self._tokens.values():
            if info.audience == audience and not info.revoked:
                info.revoked = True
                count += 1
        return count

    def expire(self, audience: str) -> int:
        now = time.time()
        count = 0
        for info in self._tokens.values():
            if info.audience == audience and info.expires_at > now:
                info.expires_at = now
                count += 1
        return count

    def clear(self) -> None:
        self._tokens.clear()

    def _prune(self, now: float) -> None:
        self._issued_since_prune = 0
        cutoff = now - _KEEP_EXPIRED_SECONDS
        for token in [t for t, info in self._tokens.items() if info.expires_at < cutoff]:
            del self._tokens[token]
