"""Command line of the local development tools: `python -m devhost host|run ...`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import azure.functions as func

from devhost.host import DEFAULT_KEYS_PATH, DEFAULT_PORT, LocalFunctionsHost
from devhost.settings import EnvironmentOverlay, load_local_settings, settings_values

HOST_DESCRIPTION = """\
Run the function app locally, without Azure Functions Core Tools.

This is a development stand-in for the Azure Functions host, not for production and not a
complete emulation: it serves HTTP triggers on http://127.0.0.1:<port>/<routePrefix>/<route>,
polls queue triggers (Azurite or a storage account), writes queue outputs and runs timer
triggers, all from the app's own bindings and host.json. `func start` (Azure Functions Core
Tools) is the real thing; use it wherever it can be installed.
"""


def import_app(spec: str) -> func.FunctionApp:
    """Import `module:attribute` (e.g. `function_app:app`) and check it is a FunctionApp."""
    module_name, _, attribute = spec.partition(":")
    module = importlib.import_module(module_name)
    app = getattr(module, attribute or "app")
    if not isinstance(app, func.FunctionApp):
        raise TypeError(f"{spec} is a {type(app).__name__}, not an azure.functions.FunctionApp")
    return app


def build_host(
    app: str = "function_app:app",
    settings: str | Path | None = "local.settings.json",
    port: int | None = None,
    keys: str | Path = DEFAULT_KEYS_PATH,
    root: str | Path = ".",
    *,
    extra_settings: dict[str, str] | None = None,
    override_environment: bool = False,
) -> LocalFunctionsHost:
    """Build a host the way `python -m devhost host` does; relative paths are relative to `root`.

    The settings are applied to the environment before the app is imported, as `func start`
    does. `extra_settings` (e.g. an Azurite connection string) win over the settings file.
    Without `port`, local.settings.json `Host.LocalHttpPort` is used, else 7071.
    """
    root_path = Path(root).resolve()
    document: dict[str, object] = {}
    if settings is not None:
        settings_path = root_path / settings
        if settings_path.exists():
            document = load_local_settings(settings_path)
        elif Path(settings) != Path("local.settings.json"):
            raise FileNotFoundError(f"settings file {settings_path} not found")
        else:
            logging.getLogger("devhost").warning(
                "No local.settings.json in %s: running with the environment only.", root_path
            )
    values = {**settings_values(document), **(extra_settings or {})}
    EnvironmentOverlay().apply(values, override=override_environment)
    if str(root_path) not in sys.path:
        sys.path.insert(0, str(root_path))
    function_app = import_app(app)
    host_section = document.get("Host")
    local_port = host_section.get("LocalHttpPort") if isinstance(host_section, dict) else None
    chosen_port = port if port is not None else int(local_port or DEFAULT_PORT)
    return LocalFunctionsHost(
        function_app,
        root=root_path,
        settings=values,
        port=chosen_port,
        keys_path=root_path / keys,
        override_environment=override_environment,
    )


def add_host_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the `host` command (reusable by commands that also start the host)."""
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--root", default=".", help="project root with host.json (default: .)")
    parser.add_argument(
        "--settings",
        default="local.settings.json",
        help="local.settings.json whose Values become environment variables",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"HTTP port (default: Host.LocalHttpPort from the settings, else {DEFAULT_PORT}; 0: any free port)",
    )
    parser.add_argument(
        "--keys",
        default=str(DEFAULT_KEYS_PATH),
        help="function keys file, created with random keys if missing (default: %(default)s)",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="[%(asctime)s] %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stdout,
    )
    # The storage SDK logs every request's headers at INFO.
    logging.getLogger("azure").setLevel(logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devhost", description="Local development tools for the app.")
    commands = parser.add_subparsers(dest="command", required=True)
    host = commands.add_parser(
        "host",
        help="run the app with a local stand-in for the Functions host (development only)",
        description=HOST_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_host_arguments(host)
    from devhost.run import RUN_DESCRIPTION, add_run_arguments

    run_command = commands.add_parser(
        "run",
        help="run Azurite, the WNS sandbox and the app together (local development only)",
        description=RUN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(run_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "host":
        configure_logging(args.verbose)
        build_host(args.app, args.settings, args.port, args.keys, args.root).run()
    elif args.command == "run":
        from devhost.run import run

        return run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
