"""Verify Entra ID access tokens for our API and say who the caller is: a device's user or a backend.

What a token must be, each for a reason:
- RS256 only, with a `kid` the tenant publishes: `alg: none`, HS256 keyed with the public key
  and keys of our own choosing are refused before any signature maths.
- Its tenant (`tid`) on the allowed list, checked before any key is fetched, so a token cannot
  make us fetch the metadata of a tenant of its choosing.
- Issued by that tenant's v2.0 endpoint (`{authority}/{tid}/v2.0`). v1.0 tokens
  (`https://sts.windows.net/{tid}/`) are refused: the API's registration asks Entra ID for
  v2.0 tokens (`requestedAccessTokenVersion: 2`, infra/README.md), so a v1 token is not ours.
- For one of our audiences (the API's client id; its `api://` URI for tokens that carry it).
- Current: `exp` and `nbf` with a minute of leeway for clock skew; `iat`, `oid`, `tid` present.
- A delegated token (it has `scp`) must carry the device scope and is a device, whatever roles
  the user holds; an app-only token (no `scp`) must carry the backend app role.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from pushfuncs.signing_keys import SigningKeys

DEVICE_SCOPE = "Installations.ReadWrite"
BACKEND_ROLE = "Installations.Manage"
LEEWAY_SECONDS = 60
MAX_TOKEN_CHARS = 16_384
_REQUIRED_CLAIMS = ["exp", "nbf", "iat", "iss", "aud", "tid", "oid"]
_OBJECT_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


class TokenRejected(Exception):
    """The token is not a valid token for our API; `reason` is safe to log and to answer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MissingPermission(Exception):
    """A valid token without the device scope or the backend app role."""


@dataclass(frozen=True)
class Caller:
    """Who is calling: a device's signed-in user (owner set) or a backend (owner None)."""

    owner: str | None
    user_id: str | None

    @property
    def is_device(self) -> bool:
        return self.owner is not None


# A caller with a function key: the host checked the key before our code ran.
KEY_HOLDER = Caller(owner=None, user_id=None)


class BearerTokenVerifier:
    def __init__(
        self, keys: SigningKeys, authority: str, audiences: Sequence[str], allowed_tenants: Sequence[str]
    ) -> None:
        self._keys = keys
        self._authority = authority.rstrip("/")
        self._audiences = list(audiences)
        self._tenants = frozenset(allowed_tenants)

    async def verify(self, token: str) -> Caller:
        """The caller the token proves, or TokenRejected / MissingPermission."""
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenRejected("the token is too long")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError as error:
            raise TokenRejected("the token is malformed") from error
        if header.get("alg") != "RS256":
            raise TokenRejected("the token must be signed with RS256")
        kid, tenant = header.get("kid"), unverified.get("tid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("the token names no signing key")
        if not isinstance(tenant, str) or tenant not in self._tenants:
            raise TokenRejected("the token's tenant is not allowed")
        key = await self._keys.get(tenant, kid)
        if key is None:
            raise TokenRejected("the token is signed with an unknown key")
        claims = self._decode(token, key, tenant)
        return _caller(claims)

    def _decode(self, token: str, key: jwt.PyJWK, tenant: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self._audiences,
                issuer=f"{self._authority}/{tenant}/v2.0",
                leeway=LEEWAY_SECONDS,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as error:
            raise TokenRejected("the token has expired") from error
        except jwt.ImmatureSignatureError as error:
            raise TokenRejected("the token is not valid yet") from error
        except jwt.InvalidAudienceError as error:
            raise TokenRejected("the token is for another audience") from error
        except jwt.InvalidIssuerError as error:
            raise TokenRejected("the token is from another issuer") from error
        except jwt.InvalidSignatureError as error:
            raise TokenRejected("the token's signature is not valid") from error
        except jwt.InvalidTokenError as error:
            raise TokenRejected("the token is not valid") from error


def _caller(claims: dict[str, Any]) -> Caller:
    tenant, oid = claims["tid"], claims["oid"]
    # Entra object ids are GUIDs; anything else must not reach index keys.
    if not isinstance(oid, str) or not _OBJECT_ID.fullmatch(oid):
        raise TokenRejected("the token has no usable object id")
    scopes = claims.get("scp")
    if scopes is not None:
        if not isinstance(scopes, str) or DEVICE_SCOPE not in scopes.split():
            raise MissingPermission(DEVICE_SCOPE)
        return Caller(owner=f"{tenant}/{oid}", user_id=oid)
    roles = claims.get("roles")
    if isinstance(roles, list) and BACKEND_ROLE in roles:
        return KEY_HOLDER
    raise MissingPermission(BACKEND_ROLE)
