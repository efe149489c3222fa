"""Access tokens for the API that the sandbox's Entra ID signs: RS256 JWTs with published keys.

Entra ID signs with one key at a time and publishes the keys of a rollover in its JWKS; the
sandbox does the same with the last two keys, and rotates when the control API asks.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

# Keys published at once: the signing key and the one it replaced.
_PUBLISHED_KEYS = 2
_OID_NAMESPACE = uuid.UUID("6f1c2a0e-8d4b-4a8e-9f0e-2b7c1d3e5a90")


def object_id(tenant: str, principal: str) -> str:
    """A stable object id (a GUID, like Entra's) for a user or service principal of a tenant."""
    return str(uuid.uuid5(_OID_NAMESPACE, f"{tenant}/{principal}"))


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    def public_jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": _b64_int(numbers.n),
            "e": _b64_int(numbers.e),
        }


def _b64_int(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _new_key() -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_numbers().n.to_bytes(256, "big")
    # Entra's kid is a thumbprint-like string; any unique value does.
    kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:20]).rstrip(b"=").decode("ascii")
    return SigningKey(kid, key)


@dataclass
class TokenShape:
    """One-shot changes to the next API token, set through the control API to test refusals."""

    expires_in: int | None = None
    not_before_in: int | None = None
    audience: str | None = None
    issuer: str | None = None
    tenant: str | None = None
    scope: str | None = None
    roles: list[str] | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> TokenShape:
        names = {"expiresIn": "expires_in", "notBeforeIn": "not_before_in", "audience": "audience"}
        names |= {"issuer": "issuer", "tenant": "tenant", "scope": "scope", "roles": "roles"}
        unknown = set(body) - set(names)
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}")
        values = {names[k]: v for k, v in body.items()}
        for name in ("expires_in", "not_before_in"):
            if name in values and (isinstance(values[name], bool) or not isinstance(values[name], int)):
                raise ValueError(f"{name} must be an integer number of seconds")
        for name in ("audience", "issuer", "tenant", "scope"):
            if name in values and not isinstance(values[name], str):
                raise ValueError(f"{name} must be a string")
        if "roles" in values and not (
            isinstance(values["roles"], list) and all(isinstance(r, str) for r in values["roles"])
        ):
            raise ValueError("roles must be a list of strings")
        return cls(**values)


@dataclass
class ApiTokenIssuer:
    """Signs the API's access tokens; only the server's event loop touches it."""

    keys: list[SigningKey] = field(default_factory=lambda: [_new_key()])
    next_shape: TokenShape | None = None

    def rotate(self) -> str:
        """Sign with a new key from now on; the JWKS keeps the previous one too."""
        self.keys = [_new_key(), *self.keys][:_PUBLISHED_KEYS]
        return self.keys[0].kid

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys]}

    def issue(self, issuer_base: str, tenant: str, audience: str, claims: dict[str, Any], lifetime: int) -> str:
        """A signed v2.0 access token for `tenant` with the caller-specific `claims` added."""
        shape, self.next_shape = self.next_shape or TokenShape(), None
        now = int(time.time())
        tid = shape.tenant or tenant
        payload = {
            "aud": shape.audience or audience,
            "iss": shape.issuer or f"{issuer_base}/{tid}/v2.0",
            "iat": now,
            "nbf": now + (shape.not_before_in or 0),
            "exp": now + (shape.expires_in if shape.expires_in is not None else lifetime),
            "tid": tid,
            "ver": "2.0",
            "uti": uuid.uuid4().hex,
            **claims,
        }
        if shape.scope is not None:
            payload["scp"] = shape.scope
        if shape.roles is not None:
            payload["roles"] = shape.roles
        signing = self.keys[0]
        return jwt.encode(payload, signing.private_key, algorithm="RS256", headers={"kid": signing.kid, "typ": "JWT"})
