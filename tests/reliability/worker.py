"""A worker for the kill test: the app on LocalFunctionsHost with a short message lease.

Run as `python -m tests.reliability.worker --root R --port P --keys K --lease SECONDS`, with the
app's settings in the environment. A message it holds reappears `lease` seconds after it dies.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import timedelta
from pathlib import Path

from devhost.host import LocalFunctionsHost
from tests.reliability.support import fresh_app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keys", type=Path, required=True)
    parser.add_argument("--lease", type=float, default=4.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    host = LocalFunctionsHost(
        fresh_app(),
        root=args.root,
        settings={},
        port=args.port,
        keys_path=args.keys,
        message_lease=timedelta(seconds=args.lease),
    )
    asyncio.run(host.serve())


if __name__ == "__main__":
    main()
