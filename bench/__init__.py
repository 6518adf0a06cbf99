"""Benchmarks: side by side with bare workers, throughput, retry lateness, dashboard refresh
cost, kill -9 recovery.

``python -m bench [--quick] [--only NAME] [--bootstrap HOST:PORT]`` (``make bench``). Speed and
memory targets are measured here, against a real broker, not asserted in timed tests. See
docs/benchmarks.md for what each figure means and the last recorded run.
"""
