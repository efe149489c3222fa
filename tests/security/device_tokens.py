"""Access tokens for the device tests: real ones from the sandbox's token endpoint, and forgeries of them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox import SandboxClient


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def with_claims(token: str, **changes: Any) -> str:
    """The token with changed claims and its original signature (a forgery)."""
    header, _, signature = token.split(".")
    return f"{header}.{_segment({**claims_of(token), **changes})}.{signature}"


def unsigned(token: str) -> str:
    """The token's claims with `alg: none` and no signature."""
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims_of(token))}."


def hs256_with_public_key(token: str, client: SandboxClient) -> str:
    """The token's claims signed HS256 with the tenant's published RSA key as the HMAC secret."""
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in client.signing_keys() if k["kid"] == kid)
    pem = jwt.PyJWK(jwk, "RS256").key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_segment(claims_of(token))}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def signed_by_stranger(token: str, kid: str = "not-a-published-key") -> str:
    """The token's claims signed RS256 with a key the tenant never published."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims_of(token), key, algorithm="RS256", headers={"kid": kid})
