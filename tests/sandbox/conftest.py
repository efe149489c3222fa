"""Fixtures for the sandbox tests: one sandbox for the whole run, fresh tokens and channels per test."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sandbox import SandboxClient, SandboxHandle, start_sandbox

TOAST = (
    b'<toast><visual><binding template="ToastGeneric"><text>Hello</text>'
    b"<text>from the sandbox tests</text></binding></visual></toast>"
)


@dataclass(frozen=True)
class ClientCertificate:
    cert_path: Path
    # Private key followed by the certificate, as azure-identity's CertificateCredential reads it.
    pem_path: Path
    key: rsa.RSAPrivateKey
    cert: x509.Certificate


def make_client_certificate(directory: Path, name: str) -> ClientCertificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert_path, pem_path = directory / f"{name}.crt.pem", directory / f"{name}.key-and-cert.pem"
    cert_path.write_bytes(cert_pem)
    pem_path.write_bytes(key_pem + cert_pem)
    return ClientCertificate(cert_path, pem_path, key, cert)


@pytest.fixture(scope="session")
def client_certificate(tmp_path_factory: pytest.TempPathFactory) -> ClientCertificate:
    return make_client_certificate(tmp_path_factory.mktemp("certs"), "registered")


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory, client_certificate: ClientCertificate) -> Iterator[SandboxHandle]:
    with start_sandbox(
        port=0,
        state_dir=tmp_path_factory.mktemp("sandbox-state"),
        client_certificates=[client_certificate.cert_path],
    ) as handle:
        yield handle


@pytest.fixture(scope="session")
def ssl_context(sandbox: SandboxHandle) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(sandbox.ca_path))


@pytest.fixture(scope="session")
def control(sandbox: SandboxHandle) -> Iterator[SandboxClient]:
    with sandbox.client() as client:
        yield client


@pytest.fixture(scope="session")
def http(ssl_context: ssl.SSLContext) -> Iterator[httpx.Client]:
    with httpx.Client(verify=ssl_context, timeout=10) as client:
        yield client


def fetch_token(control: SandboxClient, sandbox: SandboxHandle, scope: str = "https://wns.windows.com/.default") -> str:
    response = control.request_token(sandbox.tenant_id, sandbox.client_id, sandbox.client_secret, scope)
    response.raise_for_status()
    return response.json()["access_token"]


@pytest.fixture
def wns_token(control: SandboxClient, sandbox: SandboxHandle) -> str:
    return fetch_token(control, sandbox)


@pytest.fixture
def channel(control: SandboxClient) -> dict[str, Any]:
    return control.create_channel()


@dataclass
class Sender:
    """Posts notifications the way the WNS quickstart does, with per-test overrides."""

    http: httpx.Client
    token: str

    def headers(self, wns_type: str = "wns/toast", **overrides: str | None) -> dict[str, str]:
        content_type = "application/octet-stream" if wns_type == "wns/raw" else "text/xml"
        headers: dict[str, str | None] = {
            "Authorization": f"Bearer {self.token}",
            "X-WNS-Type": wns_type,
            "Content-Type": content_type,
        }
        headers.update(overrides)
        return {k: v for k, v in headers.items() if v is not None}

    def post(
        self, uri: str, body: bytes = TOAST, wns_type: str = "wns/toast", method: str = "POST", **headers: str | None
    ) -> httpx.Response:
        return self.http.request(method, uri, content=body, headers=self.headers(wns_type, **headers))


@pytest.fixture
def sender(http: httpx.Client, wns_token: str) -> Sender:
    return Sender(http, wns_token)
