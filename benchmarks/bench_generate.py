"""Benchmark of the sample-export generator: customers per minute, rows per file type, wall time, peak RSS.

    python benchmarks/bench_generate.py --customers 100000
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

from samplegen import generate_exports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2019, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 20))
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--defect-rate", type=float, default=0.01)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        began = time.perf_counter()

        def progress(stage: str) -> None:
            print(f"{time.perf_counter() - began:7.2f}s  {stage}", flush=True)

        manifest = generate_exports(Path(tmp), customers=args.customers, seed=args.seed, start=args.start,
                                    end=args.end, days=args.days, defect_rate=args.defect_rate,
                                    progress=progress)
        wall = time.perf_counter() - began
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())

    rows: Counter[str] = Counter()
    for f in manifest["files"]:
        rows[f["path"].rsplit("_", 1)[0]] += f["rows"]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    print()
    print(f"customers          {args.customers:>12,}  "
          f"({args.start} .. {args.end}, {args.days} export days)")
    for entity, n in sorted(rows.items()):
        print(f"  {entity:<24} {n:>12,} rows")
    print(f"rows written       {sum(rows.values()):>12,}  ({size / 2**20:,.0f} MiB)")
    print(f"defects injected   {len(manifest['defects']):>12,}")
    print(f"wall time          {wall:>12.1f} s")
    print(f"customers/minute   {args.customers / wall * 60:>12,.0f}")
    print(f"peak RSS           {peak_mib:>12,.0f} MiB")


if __name__ == "__main__":
    main()
