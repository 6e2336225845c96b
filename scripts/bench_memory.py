#!/usr/bin/env python
"""Benchmark the memory model: recorded H100 data plus live profiling on this machine.

    python scripts/bench_memory.py                       # CPU: tiny CNN, recorded data
    python scripts/bench_memory.py --device cuda --out $OUT/memory.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "memory.json"))
    parser.add_argument("--fixtures", default=str(ROOT / "tests" / "fixtures" / "memory"))
    args = parser.parse_args()
    from benchlib.memory_bench import run_bench

    result = run_bench(args.device, Path(args.fixtures), log=lambda line: print(line, flush=True))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str) + "\n")
    _table(result)
    print(f"wrote {args.out}")
    return 0


def _table(result: dict) -> None:  # type: ignore[type-arg]
    print(f"\n{'case':<34}{'n':>4}{'median':>9}{'max':>9}{'under':>9}")
    rows = [("recorded, refined (headline)", result["recorded"]["refined"]),
            ("recorded, profile only", result["recorded"]["profile"])]
    rows += [(f"live {name}", r) for name, r in result["live"].items()]
    for name, s in rows:
        if s.get("n"):
            print(f"{name:<34}{s['n']:>4}{s['median_rel_error']:>9.1%}{s['max_rel_error']:>9.1%}"
                  f"{s['max_under_prediction']:>9.1%}")
    print(f"profiling seconds (max per model): {result['profiling_seconds']:.1f} on {result['device']}")


if __name__ == "__main__":
    raise SystemExit(main())
