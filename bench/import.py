"""Benchmark: contact and suppression file imports, today's code against the baseline (e65ae57).

    .venv/bin/python bench/import.py [--rows 1000000] [--baseline-rows 100000]
                                     [--supp-rows 100000] [--supp-baseline-rows 10000]

Generates a contact CSV (number,name,city,loan_id; 1% of the numbers repeat an earlier row) and
a suppression CSV (number,reason), then imports each in a child process: the working tree's code
into the database dialer_bench_imp, the baseline's (git archive of e65ae57 in a temporary
directory, first on the child's sys.path) into dialer_bench_imp_base. Both databases are dropped,
created and migrated by a separate child first, so the timed child does only django.setup() and
the import; its peak RSS is ru_maxrss from wait4, so it includes Python and Django.
The PostgreSQL server is BENCH_DATABASE_URL's (default postgres://postgres@127.0.0.1:5432); only
the two database names above are touched. The baseline reads the whole file and keeps its rows in
memory, hence its own, smaller row counts; the output states them.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "e65ae57"
DATABASES = {"new": "dialer_bench_imp", "baseline": "dialer_bench_imp_base"}
SENDER_DLT = "1101BENCHIMPORT"


def _server_url() -> str:
    url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dialer_bench")
    if not url.startswith("postgres"):
        raise SystemExit("this benchmark needs PostgreSQL: set BENCH_DATABASE_URL=postgres://...")
    return url


def _database_url(name: str) -> str:
    return _server_url().rsplit("/", 1)[0] + "/" + name


def write_contacts(path: Path, rows: int, *, seed: int = 7) -> int:
    """rows data rows, every 100th repeating an earlier number; returns the distinct numbers."""
    rng = random.Random(seed)
    distinct = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("number,name,city,loan_id\n")
        for i in range(rows):
            if i % 100 == 99:
                n = rng.randrange(i)
                n -= n % 100 == 99  # an earlier row that is itself a first occurrence
            else:
                n, distinct = i, distinct + 1
            out.write(f"98{n:08d},Customer {n},City {n % 97},LN-{n:09d}-{n % 13}\n")
    return distinct


def write_suppressions(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("number,reason\n")
        out.writelines(f"97{n:08d},asked not to be called\n" for n in range(rows))


def _run_child(tree: Path, database: str, *args: str) -> tuple[dict[str, Any], float]:
    """Run this script as a child on `tree`'s code; return its JSON and its peak RSS in MB."""
    env = dict(
        os.environ,
        DATABASE_URL=_database_url(database),
        DJANGO_SETTINGS_MODULE="dialer.settings",
        LOG_LEVEL="WARNING",
        DIALER_VAR_DIR=str(Path(tempfile.gettempdir()) / f"bench_import_{database}"),
    )
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(tree), *args]
    # cwd is the tree too: Celery's app set-up puts the working directory first on sys.path.
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child {args[0]} on {tree} failed ({proc.returncode}): {out[-2000:]}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def _recreate(database: str) -> None:
    import psycopg
    from psycopg import sql

    admin = psycopg.conninfo.make_conninfo(_server_url(), dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


# The child: runs on the tree given, first on sys.path.


def _child(tree: Path, step: str, path: str) -> dict[str, Any]:
    sys.path.insert(0, str(tree))
    import django

    django.setup()
    if step == "prepare":
        return _prepare()
    t0 = time.perf_counter()
    if step == "contacts":
        result = _import_contacts(Path(path))
    else:
        result = _import_suppressions(Path(path))
    return {**result, "seconds": time.perf_counter() - t0}


def _prepare() -> dict[str, Any]:
    from django.core.management import call_command

    from campaigns.models import Campaign, Trunk
    from compliance.models import Sender

    call_command("migrate", verbosity=0)
    sender = Sender.objects.create(dlt_entity_id=SENDER_DLT, name="Bench import")
    trunk = Trunk.objects.create(name="bench-import", sip_uri="sip:127.0.0.1:5060")
    campaign = Campaign.objects.create(
        name="Bench import", purpose="service_explicit", sender=sender, trunk=trunk
    )
    return {"campaign_id": campaign.pk}


def _file_argument(function: Any, path: Path) -> Any:
    """An open file where the import takes one (today's), else the bytes (the baseline)."""
    annotation = str(inspect.signature(function).parameters["data"].annotation)
    return path.open("rb") if "IO" in annotation else path.read_bytes()


def _import_contacts(path: Path) -> dict[str, Any]:
    from campaigns.models import Campaign
    from campaigns.services.contacts_import import contacts_import

    campaign_id = Campaign.objects.get(name="Bench import").pk
    report = contacts_import(
        campaign_id=campaign_id, list_name="bench", data=_file_argument(contacts_import, path)
    )
    if not report.applied:
        raise SystemExit(f"contacts import rejected the file: {report.summary()}")
    return {"imported": report.imported, "summary": report.summary()}


def _import_suppressions(path: Path) -> dict[str, Any]:
    from compliance.imports import suppressions_import

    report = suppressions_import(
        data=_file_argument(suppressions_import, path),
        actor="bench:import",
        default_sender=SENDER_DLT,
    )
    if not report.applied:
        raise SystemExit(f"suppressions import rejected the file: {report.errors[:5]}")
    return {"imported": report.created}


# The parent.


def _measure(kind: str, tree: Path, database: str, path: Path, rows: int) -> dict[str, Any]:
    result, rss_mb = _run_child(tree, database, kind, str(path))
    return {
        "rows": rows,
        "imported": result["imported"],
        "seconds": round(result["seconds"], 2),
        "rows_per_s": round(rows / result["seconds"]),
        "peak_rss_mb": round(rss_mb),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(
            json.dumps(
                _child(Path(sys.argv[2]), sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "")
            )
        )
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=100_000)
    parser.add_argument("--supp-rows", type=int, default=100_000)
    parser.add_argument("--supp-baseline-rows", type=int, default=10_000)
    args = parser.parse_args()

    results: dict[str, Any] = {"baseline_commit": BASELINE}
    with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp_name:
        tmp = Path(tmp_name)
        base_tree = tmp / "baseline"
        base_tree.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", BASELINE],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(base_tree)], input=archive, check=True)
        files: dict[tuple[str, int], Path] = {}
        for kind, counts in (
            ("contacts", {args.rows, args.baseline_rows}),
            ("suppressions", {args.supp_rows, args.supp_baseline_rows}),
        ):
            for n in counts:
                files[kind, n] = tmp / f"{kind}_{n}.csv"
                if kind == "contacts":
                    write_contacts(files[kind, n], n)
                else:
                    write_suppressions(files[kind, n], n)
        size_mb = files["contacts", args.rows].stat().st_size / 1e6
        print(f"contacts file: {args.rows:,} rows, {size_mb:.0f} MB", flush=True)

        for label, tree, rows, supp_rows in (
            ("new", ROOT, args.rows, args.supp_rows),
            ("baseline", base_tree, args.baseline_rows, args.supp_baseline_rows),
        ):
            database = DATABASES[label]
            _recreate(database)
            _run_child(tree, database, "prepare")
            for kind, n in (("contacts", rows), ("suppressions", supp_rows)):
                result = _measure(kind, tree, database, files[kind, n], n)
                results[f"{kind}_{label}"] = result
                print(
                    f"{kind:12} {label:8}: {n:>9,} rows in {result['seconds']:7.1f} s = "
                    f"{result['rows_per_s']:>7,} rows/s, peak RSS {result['peak_rss_mb']:>5} MB "
                    f"({result['imported']:,} imported)",
                    flush=True,
                )
    for kind in ("contacts", "suppressions"):
        new, base = results[f"{kind}_new"], results[f"{kind}_baseline"]
        results[f"{kind}_speedup"] = round(new["rows_per_s"] / base["rows_per_s"], 1)
    print(
        f"contacts: {results['contacts_speedup']}x the baseline's rows/s; suppressions: "
        f"{results['suppressions_speedup']}x (baseline on {args.baseline_rows:,} and "
        f"{args.supp_baseline_rows:,} rows)"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
