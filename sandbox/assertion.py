"""Verification of certificate client assertions (RFC 7523 JWTs signed RS256/PS256)."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# Entra ID tolerates a few minutes of clock skew on assertion times.
_SKEW_SECONDS = 300


class AssertionRejected(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CertificateKeys:
    """RSA public keys of the client's registered certificates, by their JWT thumbprint headers."""

    by_x5t: dict[str, rsa.RSAPublicKey]
    by_x5t_s256: dict[str, rsa.RSAPublicKey]

    @classmethod
    def load(cls, paths: Iterable[Path]) -> CertificateKeys:
        by_x5t: dict[str, rsa.RSAPublicKey] = {}
        by_s256: dict[str, rsa.RSAPublicKey] = {}
        for path in paths:
            for cert in x509.load_pem_x509_certificates(Path(path).read_bytes()):
                key = cert.public_key()
                if not isinstance(key, rsa.RSAPublicKey):
                    raise ValueError(f"{path}: Entra ID client certificates must use RSA keys")
                by_x5t[_b64url(cert.fingerprint(hashes.SHA1()))] = key
                by_s256[_b64url(cert.fingerprint(hashes.SHA256()))] = key
        return cls(by_x5t, by_s256)


def verify(assertion: str, client_id: str, audiences: set[str], keys: CertificateKeys) -> None:
    """Raise AssertionRejected unless `assertion` is a valid, current JWT from `client_id`."""
    try:
        header_b64, payload_b64, signature_b64 = assertion.split(".")
        header = json.loads(_unb64url(header_b64))
        payload = json.loads(_unb64url(payload_b64))
        signature = _unb64url(signature_b64)
    except (ValueError, binascii.Error) as exc:
        raise AssertionRejected(50027, "JWT token is invalid or malformed.") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise AssertionRejected(50027, "JWT token is invalid or malformed.")
    key, thumbprint = _find_key(header, keys)
    _check_signature(header.get("alg"), key, f"{header_b64}.{payload_b64}".encode("ascii"), signature, thumbprint)
    _check_claims(payload, client_id, audiences)


def _find_key(header: dict[str, Any], keys: CertificateKeys) -> tuple[rsa.RSAPublicKey, str]:
    s256, x5t = header.get("x5t#S256"), header.get("x5t")
    # MSAL keeps the base64 "=" padding on thumbprints; JOSE says to drop it. Entra takes both.
    key = keys.by_x5t_s256.get(s256.rstrip("=")) if isinstance(s256, str) else None
    if key is None and isinstance(x5t, str):
        key = keys.by_x5t.get(x5t.rstrip("="))
    thumbprint = _thumbprint_hex(s256 if isinstance(s256, str) else x5t)
    if key is None:
        raise AssertionRejected(
            700027,
            "Client assertion failed signature validation. [Reason - The key was not found., "
            f"Thumbprint of key used by client: '{thumbprint}']",
        )
    return key, thumbprint


def _check_signature(alg: Any, key: rsa.RSAPublicKey, signed: bytes, signature: bytes, thumbprint: str) -> None:
    if alg == "RS256":
        pad: padding.AsymmetricPadding = padding.PKCS1v15()
    elif alg == "PS256":
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    else:
        raise AssertionRejected(5002730, f"Invalid JWT token. Unsupported signing algorithm '{alg}'.")
    try:
        key.verify(signature, signed, pad, hashes.SHA256())
    except InvalidSignature as exc:
        raise AssertionRejected(
            700027,
            "Client assertion failed signature validation. [Reason - The provided signature value did not "
            f"match the expected signature value., Thumbprint of key used by client: '{thumbprint}']",
        ) from exc


def _check_claims(payload: dict[str, Any], client_id: str, audiences: set[str]) -> None:
    if payload.get("iss") != client_id or payload.get("sub") != client_id:
        raise AssertionRejected(700021, "Client assertion application identifier doesn't match 'client_id' parameter.")
    aud = payload.get("aud")
    aud_values = aud if isinstance(aud, list) else [aud]
    if not any(isinstance(a, str) and a.rstrip("/") in audiences for a in aud_values):
        raise AssertionRejected(50013, f"Assertion audience claim does not match the required value. Found: '{aud}'.")
    now = time.time()
    exp, nbf = payload.get("exp"), payload.get("nbf")
    if not isinstance(exp, int | float) or exp + _SKEW_SECONDS < now:
        raise AssertionRejected(700024, "Client assertion is not within its valid time range.")
    if isinstance(nbf, int | float) and nbf - _SKEW_SECONDS > now:
        raise AssertionRejected(700024, "Client assertion is not within its valid time range.")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _thumbprint_hex(value: Any) -> str:
    try:
        return _unb64url(value).hex().upper() if isinstance(value, str) else ""
    except (ValueError, binascii.Error):
        return ""
