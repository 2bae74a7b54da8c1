"""The benchmark scripts of dip-repro: seconds per iteration per mode, evaluation share, parity, threads, profiles.

Run from a checkout with the project installed (``make setup``), e.g. ``python -m benchmarks.bench_fit --quick``;
docs/performance.md lists every command and what it measured.
"""
