"""Command line: python -m sandbox [options]."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from . import config as defaults
from .config import SandboxConfig
from .server import start_server


def parse_args(argv: list[str] | None = None) -> SandboxConfig:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description=(
            "Local development/test stand-in for Windows Push Notification Services (WNS), the Entra ID "
            "token endpoint, the App Service managed-identity endpoint and Key Vault secrets, served over "
            "HTTPS with a locally generated CA. Never use it in production: it keeps secrets in memory, "
            "trusts a fixed identity header and exposes unauthenticated control endpoints."
        ),
    )
    parser.add_argument("--port", type=int, default=defaults.DEFAULT_PORT, help="port on 127.0.0.1 and ::1 (0 = any)")
    parser.add_argument("--host", default="localhost", help="host name used in the URLs the sandbox hands out")
    parser.add_argument(
        "--state-dir", type=Path, default=Path(defaults.DEFAULT_STATE_DIR), help="where ca.pem is written"
    )
    parser.add_argument("--tenant-id", default=defaults.DEFAULT_TENANT_ID)
    parser.add_argument("--client-id", default=defaults.DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=defaults.DEFAULT_CLIENT_SECRET)
    parser.add_argument(
        "--client-certificate",
        type=Path,
        action="append",
        default=[],
        help="PEM certificate whose key may sign client assertions (repeatable)",
    )
    parser.add_argument("--identity-header", default=defaults.DEFAULT_IDENTITY_HEADER)
    parser.add_argument("--managed-identity-client-id", default=defaults.DEFAULT_MANAGED_IDENTITY_CLIENT_ID)
    parser.add_argument("--token-lifetime", type=int, default=defaults.DEFAULT_TOKEN_LIFETIME, help="seconds")
    parser.add_argument(
        "--numeric-expires-in",
        action="store_true",
        help="send expires_in as a JSON number instead of the string in Microsoft's WNS sample",
    )
    parser.add_argument(
        "--inbox-limit", type=int, default=defaults.DEFAULT_INBOX_LIMIT, help="deliveries kept per channel"
    )
    parser.add_argument("--access-log", action="store_true", help="log every request (slows the send path)")
    args = parser.parse_args(argv)
    return SandboxConfig(
        port=args.port,
        state_dir=args.state_dir,
        host=args.host,
        tenant_id=args.tenant_id,
        client_id=args.client_id,
        client_secret=args.client_secret,
        identity_header=args.identity_header,
        managed_identity_client_id=args.managed_identity_client_id,
        token_lifetime=args.token_lifetime,
        expires_in_as_string=not args.numeric_expires_in,
        client_certificates=tuple(args.client_certificate),
        inbox_limit=args.inbox_limit,
        access_log=args.access_log,
    )


async def serve(config: SandboxConfig) -> None:
    server = await start_server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"WNS sandbox ready at {server.url} (CA: {server.ca_path})", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
        print("WNS sandbox stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    if config.access_log:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        print(f"WNS sandbox could not start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
