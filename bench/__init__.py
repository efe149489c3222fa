"""Benchmarks of the WNS delivery engine: throughput, operations, cost, latency and growth.

Run with `python -m bench` (or `make bench`); see bench/README.md.
"""
