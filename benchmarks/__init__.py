"""The load harness: one command per scenario, each figure a ratio against a baseline measured in the same run.

`python -m benchmarks gateway|burst|sink|topology|freshness|replay|profile|all [--quick]`; see `benchmarks/RESULTS.md`.
"""

from benchmarks.report import Table, append_report
from benchmarks.wrk import LoadResult, LoadSpec, run_wrk

__all__ = ["LoadResult", "LoadSpec", "Table", "append_report", "run_wrk"]
