"""Starting and stopping the sandbox: the command line, the CA, both loopback addresses, reset."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sandbox import start_sandbox

ROOT = Path(__file__).resolve().parents[2]


def test_help_says_not_for_production() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
    )
    text = " ".join(result.stdout.split())
    assert "stand-in" in text
    assert "Never use it in production" in text
    for option in ("--port", "--state-dir", "--tenant-id", "--client-id", "--client-secret", "--identity-header"):
        assert option in text


def test_command_line_serves_until_sigterm(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", "--state-dir", str(state_dir), "--tenant-id", "cli-tenant"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("WNS sandbox ready at https://localhost:"), line + (
            process.stderr.read() if process.poll() else ""
        )
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        ca_path = state_dir / "ca.pem"
        assert f"(CA: {ca_path})" in line
        context = ssl.create_default_context(cafile=str(ca_path))
        info = httpx.get(f"{url}/_sandbox", verify=context).json()
        assert info["tenantId"] == "cli-tenant"
        assert info["tokenEndpoint"] == f"{url}/cli-tenant/oauth2/v2.0/token"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    assert process.returncode == 0


def test_ca_is_reused_and_both_loopbacks_answer(tmp_path: Path) -> None:
    with start_sandbox(state_dir=tmp_path) as first:
        ca = first.ca_path.read_bytes()
        context = ssl.create_default_context(cafile=str(first.ca_path))
        hosts = ["127.0.0.1"] + (["[::1]"] if _has_ipv6_loopback() else [])
        for host in hosts:
            response = httpx.get(f"https://{host}:{first.port}/_sandbox", verify=context)
            assert response.status_code == 200
    assert (tmp_path / "ca-key.pem").stat().st_mode & 0o077 == 0
    with start_sandbox(state_dir=tmp_path) as second:
        assert second.ca_path.read_bytes() == ca


def test_temporary_state_dir_is_removed() -> None:
    sandbox = start_sandbox()
    state_dir = sandbox.state_dir
    assert (state_dir / "ca.pem").is_file()
    sandbox.stop()
    assert not state_dir.exists()


def test_port_in_use_is_reported() -> None:
    with start_sandbox() as running, pytest.raises(OSError):
        start_sandbox(port=running.port)


def test_reset_forgets_everything(tmp_path: Path) -> None:
    with start_sandbox(state_dir=tmp_path) as sandbox, sandbox.client() as control:
        channel = control.create_channel()
        token = control.request_token(sandbox.tenant_id, sandbox.client_id, sandbox.client_secret).json()
        control.set_fault_mix({"500": 1.0})
        control.reset()
        stats = control.stats()
        assert stats["channels"] == {"created": 0, "active": 0}
        assert stats["tokenRequests"]["total"] == 0
        with pytest.raises(httpx.HTTPStatusError):
            control.channel(channel["channelId"])
        context = ssl.create_default_context(cafile=str(sandbox.ca_path))
        response = httpx.post(
            channel["channelUri"],
            content=b"<toast/>",
            headers={
                "Authorization": f"Bearer {token['access_token']}",
                "X-WNS-Type": "wns/toast",
                "Content-Type": "text/xml",
            },
            verify=context,
        )
        assert response.status_code == 401


def test_environment_points_at_the_sandbox(tmp_path: Path) -> None:
    with start_sandbox(state_dir=tmp_path) as sandbox:
        env = sandbox.environment()
    assert env["WNS_AUTHORITY_HOST"] == sandbox.url
    assert env["IDENTITY_ENDPOINT"] == f"{sandbox.url}/_sandbox/msi/token"
    assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == str(sandbox.ca_path)
    assert env["WNS_ALLOWED_HOSTS"] == f"localhost:{sandbox.port}"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True
