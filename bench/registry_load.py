"""Benchmark: registry import at national scale (target: 10,000,000 rows in <= 60 s, atomic).

    .venv/bin/python bench/registry_load.py [--rows 10000000]

It uses the benchmark database (BENCH_DATABASE_URL, default .../dialer_bench), creates it if
missing, migrates it and EMPTIES its registry (so that runs compare). Then it generates a full
file and loads it twice: into the empty registry, then over that version (the timed
`full_load_s`: a monthly reload, counts against the version in force included); then it loads a
delta of 1% of the rows. For comparison it times the naive path (registry_replace: phonenumbers
and executemany) on a 100,000-row sample, rolled back afterwards.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.registry_data import registry_rows, write_delta_csv, write_registry_csv  # noqa: E402
from bench.setup_django import setup_django  # noqa: E402

BASELINE_ROWS = 100_000


def _registry_emptied() -> None:
    """Start from no registry, so that runs are comparable."""
    from django.db import connection

    from compliance.models import RegistryVersion

    tables = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        for version in RegistryVersion.objects.all():
            if version.table_name in tables:
                cursor.execute(f"DROP TABLE {version.table_name}")
    RegistryVersion.objects.all().delete()


def _baseline_rows_per_s(rows: int) -> float:
    """The naive import (phonenumbers per row, executemany), rolled back: rows per second."""
    from django.db import transaction

    from compliance.registry import registry_replace

    sample = [(number, prefs.strip('"')) for number, prefs in registry_rows(rows, seed=99)]
    started = time.monotonic()
    with transaction.atomic():
        registry_replace(rows=sample, as_of=dt.datetime.now(dt.UTC), source="baseline")
        elapsed = time.monotonic() - started
        transaction.set_rollback(True)
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dir", help="where to write the files (default: a temporary directory)")
    args = parser.parse_args()
    setup_django()
    from compliance.registry_load import registry_load

    _registry_emptied()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        full = Path(tmp) / "registry_full.csv"
        delta = Path(tmp) / "registry_delta.csv"
        delta_rows = max(1, args.rows // 100)
        t0 = time.monotonic()
        write_registry_csv(full, args.rows)
        write_delta_csv(delta, rows=delta_rows, base_rows=args.rows)
        print(f"files: {args.rows} + {delta_rows} rows written in {time.monotonic() - t0:.1f} s "
              f"({full.stat().st_size / 1e6:.0f} MB)")  # fmt: skip

        now = dt.datetime.now(dt.UTC)
        initial = registry_load(path=full, as_of=now - dt.timedelta(hours=2), delta=False)
        print(f"initial full load (empty registry): {initial.seconds:.1f} s, "
              f"{initial.entries} entries, {initial.rejected} rejected")  # fmt: skip
        reload = registry_load(path=full, as_of=now - dt.timedelta(hours=1), delta=False)
        print(f"full reload over v{initial.version_id}: {reload.seconds:.1f} s "
              f"({args.rows / reload.seconds:,.0f} rows/s); added {reload.added}, "
              f"changed {reload.changed}, removed {reload.removed}")  # fmt: skip
        amended = registry_load(path=delta, as_of=now, delta=True)
        print(f"delta of {delta_rows} rows: {amended.seconds:.1f} s; added {amended.added}, "
              f"changed {amended.changed}, removed {amended.removed}, "
              f"entries {amended.entries}")  # fmt: skip

    baseline = _baseline_rows_per_s(min(BASELINE_ROWS, args.rows))
    fast = args.rows / reload.seconds
    print(f"baseline registry_replace on {min(BASELINE_ROWS, args.rows)} rows: "
          f"{baseline:,.0f} rows/s; registry_load is {fast / baseline:.0f}x faster")  # fmt: skip
    print(json.dumps({
        "rows": args.rows,
        "full_load_s": round(reload.seconds, 2),
        "rows_per_s": round(fast),
        "delta_rows": delta_rows,
        "delta_load_s": round(amended.seconds, 2),
        "initial_load_s": round(initial.seconds, 2),
        "baseline_rows_per_s": round(baseline),
        "speedup": round(fast / baseline, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
