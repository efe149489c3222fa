"""The `python -m devhost host` command and build_host()."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devhost.__main__ import build_host, build_parser
from devhost.azurite import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def restore_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_help_says_it_is_a_development_stand_in() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "host", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    text = " ".join(result.stdout.split())
    assert "development stand-in for the Azure Functions host" in text
    assert "not for production" in text
    assert "`func start` (Azure Functions Core Tools) is the real thing" in text
    for option in ("--app", "--settings", "--port", "--keys"):
        assert option in text


def test_parser_defaults() -> None:
    args = build_parser().parse_args(["host"])
    assert (args.app, args.settings, args.port, args.keys) == (
        "function_app:app",
        "local.settings.json",
        None,
        str(Path(".devhost") / "keys.json"),
    )


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, str, int]:
    """A one-function project whose app reads a setting at import time, as apps may."""
    module = f"cli_probe_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            """
            import os
            import azure.functions as func

            GREETING = os.environ["GREETING"]
            app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

            @app.route(route="greet", methods=["GET"])
            def greet(req: func.HttpRequest) -> str:
                return f"{GREETING} {os.environ['FLAG']} {os.environ['KEPT']}"
            """
        )
    )
    (tmp_path / "host.json").write_text('{"version": "2.0"}')
    port = free_port()
    settings = {"Values": {"GREETING": "hi", "FLAG": True, "KEPT": "from-file"}, "Host": {"LocalHttpPort": port}}
    (tmp_path / "local.settings.json").write_text(json.dumps(settings))
    return tmp_path, module, port


async def test_build_host_applies_settings_before_importing_the_app(
    project: tuple[Path, str, int],
    restore_environ: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root, module, port = project
    monkeypatch.setenv("KEPT", "from-environment")
    host = build_host(app=f"{module}:app", root=root, keys="state/keys.json")
    assert host.requested_port == port
    assert host.keys_path == root / "state" / "keys.json"
    with caplog.at_level(logging.INFO, logger="devhost"):
        async with host, httpx.AsyncClient(base_url=host.base_url) as client:
            response = await client.get("/api/greet")
    assert response.text == "hi true from-environment"
    assert (root / "state" / "keys.json").exists()
    assert "greet: [GET]" in caplog.text


def test_build_host_refuses_a_missing_settings_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_host(settings="missing.json", root=tmp_path)


def test_build_host_refuses_what_is_not_a_function_app(project: tuple[Path, str, int], restore_environ: None) -> None:
    root, module, _ = project
    with pytest.raises(TypeError, match=r"not an azure\.functions\.FunctionApp"):
        build_host(app=f"{module}:GREETING", root=root)


async def test_banner_prints_the_default_key(
    tmp_path: Path, restore_environ: None, caplog: pytest.LogCaptureFixture
) -> None:
    module = f"cli_keyed_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            """
            import azure.functions as func

            app = func.FunctionApp()

            @app.route(route="secure")
            def secure(req: func.HttpRequest) -> str:
                return "ok"
            """
        )
    )
    host = build_host(app=f"{module}:app", root=tmp_path, port=0)
    with caplog.at_level(logging.INFO, logger="devhost"):
        async with host:
            assert host.keys is not None
            key = host.keys.default_function_key
    assert key in caplog.text
    assert host.keys.master_key not in caplog.text
