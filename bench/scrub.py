"""Pre-flight scrub throughput: 1,000,000 contacts against a 10,000,000-entry DND registry.

    .venv/bin/python bench/scrub.py [--registry-rows 10000000] [--contacts 1000000]

Uses a benchmark database (BENCH_DATABASE_URL, default postgres://.../dialer_bench). Loads a
synthetic registry with `load_registry`'s loader (timed: import_s), then scrubs the contact
numbers with compliance.scrub.scrub_numbers (the campaign pre-flight), and in the same run the
baseline: the same rules looked up one contact at a time through the ORM (the registry row, then
the sender's suppression), on a sample. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.setup_django import setup_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--registry-rows", type=int, default=10_000_000)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--baseline-sample", type=int, default=20_000)
    args = parser.parse_args()
    setup_django()

    from django.db.models import Q
    from django.utils import timezone

    from bench.registry_data import registry_numbers, write_registry_csv
    from compliance.keys import number_token
    from compliance.models import Sender, Suppression
    from compliance.registry import registry_current, registry_lookup
    from compliance.registry_load import registry_load
    from compliance.scrub import scrub_numbers

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "registry.csv"
        t0 = time.perf_counter()
        write_registry_csv(path, args.registry_rows, seed=11)
        print(f"wrote {args.registry_rows:,} registry rows in {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        report = registry_load(path=path, as_of=timezone.now(), delta=False, source="bench")
        import_s = time.perf_counter() - t0
    print(f"registry import: {report.entries:,} entries in {import_s:.1f}s")

    # A third of the contacts are in the registry, the rest are not: a typical bought list.
    rng = random.Random(5)
    in_registry = [f"+91{n}" for n in registry_numbers(args.contacts // 3, seed=11)]
    others = [
        f"+91{rng.randrange(6_000_000_000, 10_000_000_000)}"
        for _ in range(args.contacts - len(in_registry))
    ]
    contacts = in_registry + others
    rng.shuffle(contacts)
    sender, _ = Sender.objects.get_or_create(dlt_entity_id="1101BENCH", defaults={"name": "Bench"})
    Suppression.objects.filter(sender=sender).delete()
    Suppression.objects.bulk_create(
        Suppression(number=n, number_token=number_token(n), sender=sender) for n in others[:5000]
    )

    kwargs: dict[str, Any] = {
        "purpose": "promotional",
        "sender_dlt_id": "1101BENCH",
        "sector": "other",
        "cli": "+911401234567",
        "category": 3,
    }
    t0 = time.perf_counter()
    result = scrub_numbers(numbers=contacts, at=timezone.now(), **kwargs)
    scrub_s = time.perf_counter() - t0
    rate = len(contacts) / scrub_s
    print(
        f"bulk scrub: {len(contacts):,} contacts in {scrub_s:.2f}s = {rate:,.0f}/s; "
        f"blocked {len(result.blocked):,} {dict(result.by_reason)}"
    )

    state = registry_current()
    assert state is not None
    sample = contacts[: args.baseline_sample]
    t0 = time.perf_counter()
    for number in sample:
        registry_lookup(state=state, number=number)
        Suppression.objects.filter(number_token=number_token(number)).filter(
            Q(sender__isnull=True) | Q(sender=sender)
        ).exists()
    base_rate = len(sample) / (time.perf_counter() - t0)
    print(f"baseline, one contact at a time: {len(sample):,} contacts at {base_rate:,.0f}/s")
    print(
        json.dumps(
            {
                "registry_rows": report.entries,
                "contacts": len(contacts),
                "numbers_per_s": round(rate),
                "baseline_numbers_per_s": round(base_rate),
                "speedup": round(rate / base_rate, 1),
                "import_s": round(import_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
