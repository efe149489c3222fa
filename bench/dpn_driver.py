"""Baseline: django-push-notifications' WNS sender, run by the benchmark's own environment (bench/.env).

It is used as its documentation shows: settings with the package SID and secret, then
`wns_send_message` per channel (what `wns_send_bulk_message` loops over). It asks the legacy
token endpoint (`WNS_ACCESS_URL`) for a token before every send, through urllib.

usage: bench/.env/bin/python bench/dpn_driver.py <channels.json> <count> <token-url>
prints: {"sent": n, "ok": n, "seconds": s, "cpuSeconds": s, "errors": {...}}
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter


def main(argv: list[str]) -> int:
    channels_file, count_text, token_url = argv
    with open(channels_file, encoding="utf-8") as handle:
        channels: list[str] = json.load(handle)
    count = int(count_text)

    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["push_notifications"],
        PUSH_NOTIFICATIONS_SETTINGS={
            "WNS_PACKAGE_SECURITY_ID": "ms-app://benchmark-package-sid",
            "WNS_SECRET_KEY": "benchmark-secret",
            "WNS_ACCESS_URL": token_url,
        },
    )
    django.setup()
    from push_notifications.wns import wns_send_message

    message = {"text": ["Benchmark", "Hello from pushfuncs"]}
    wns_send_message(uri=channels[0], message=message)  # warm-up: imports, first connection
    errors: Counter[str] = Counter()
    ok = 0
    cpu_before, started = time.process_time(), time.perf_counter()
    for i in range(count):
        try:
            wns_send_message(uri=channels[i % len(channels)], message=message)
            ok += 1
        except Exception as error:  # the package raises on every non-200
            errors[type(error).__name__] += 1
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    print(json.dumps({"sent": count, "ok": ok, "seconds": seconds, "cpuSeconds": cpu, "errors": dict(errors)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
