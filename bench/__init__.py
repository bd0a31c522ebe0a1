"""Benchmarks and long-running robustness checks (run as `python -m bench.<name>`)."""
