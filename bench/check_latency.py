"""Latency of the last-moment compliance check, as the worker runs it before every dial.

    .venv/bin/python bench/check_latency.py [--checks 5000] [--registry-rows 1000000]

Loads a synthetic registry into a benchmark database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/dialer_bench), adds consents, suppressions and today's audit
entries for the caps, then times compliance.services.decide() for promotional calls to a mix of
registry and clean numbers. For scale it also times the floor in the same run: one bare
round trip to PostgreSQL, which every query in the check pays. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.setup_django import setup_django


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--registry-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    setup_django()

    from django.db import connection
    from django.utils import timezone

    from bench.registry_data import registry_numbers, write_registry_csv
    from compliance.keys import number_token
    from compliance.models import AuditEntry, Consent, Sender, Suppression
    from compliance.registry_load import registry_load
    from compliance.services import decide

    now = timezone.now()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "registry.csv"
        write_registry_csv(path, args.registry_rows, seed=7)
        started = time.perf_counter()
        report = registry_load(path=path, as_of=now, delta=False, source="bench")
        print(f"registry: {report.entries} entries loaded in {time.perf_counter() - started:.1f}s")

    sender, _ = Sender.objects.get_or_create(dlt_entity_id="1101BENCH", defaults={"name": "Bench"})
    in_registry = [f"+91{n}" for n in registry_numbers(20_000, seed=7)]
    rng = random.Random(3)
    clean = [f"+91{rng.randrange(6_000_000_000, 10_000_000_000)}" for _ in range(20_000)]
    Consent.objects.filter(sender=sender).delete()
    Consent.objects.bulk_create(
        Consent(
            number=n,
            number_token=number_token(n),
            sender=sender,
            scope="promotional",
            given_at=now - dt.timedelta(days=1),
            reference=f"B-{i}",
        )
        for i, n in enumerate(in_registry[:2000])
    )
    Suppression.objects.filter(sender=sender).delete()
    Suppression.objects.bulk_create(
        Suppression(number=n, number_token=number_token(n), sender=sender) for n in clean[:2000]
    )
    AuditEntry.objects.bulk_create(
        AuditEntry(
            kind="decision",
            number=n,
            number_token=number_token(n),
            sender_dlt_id="1101BENCH",
            purpose="promotional",
            allowed=True,
        )
        for n in clean[2000:4000]
    )

    numbers = in_registry + clean
    rng.shuffle(numbers)
    kwargs: dict[str, Any] = {
        "purpose": "promotional",
        "sender_dlt_id": "1101BENCH",
        "sector": "other",
        "cli": "+911401234567",
        "category": 3,
        "owned_clis": {"+911401234567"},
    }
    at = timezone.now()
    for number in numbers[:300]:  # warm the connection and the caches
        decide(number=number, at=at, **kwargs)

    samples: list[float] = []
    for number in numbers[300 : 300 + args.checks]:
        t0 = time.perf_counter_ns()
        decide(number=number, at=at, **kwargs)
        samples.append((time.perf_counter_ns() - t0) / 1e6)

    floor: list[float] = []
    with connection.cursor() as cursor:
        for _ in range(2000):
            t0 = time.perf_counter_ns()
            cursor.execute("SELECT 1")
            cursor.fetchone()
            floor.append((time.perf_counter_ns() - t0) / 1e6)

    print(
        f"decide(): {len(samples)} checks, p50 {_pct(samples, 0.5):.3f} ms, "
        f"p90 {_pct(samples, 0.9):.3f} ms, p99 {_pct(samples, 0.99):.3f} ms, "
        f"max {max(samples):.3f} ms, mean {statistics.fmean(samples):.3f} ms"
    )
    print(
        f"floor (one SELECT 1 round trip): p50 {_pct(floor, 0.5):.3f} ms, "
        f"p99 {_pct(floor, 0.99):.3f} ms"
    )
    print(
        json.dumps(
            {
                "checks": len(samples),
                "p50_ms": round(_pct(samples, 0.5), 3),
                "p99_ms": round(_pct(samples, 0.99), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
