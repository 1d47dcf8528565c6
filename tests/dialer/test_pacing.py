"""Distributed pacing against a real Redis (database 12; no SQL database needed)."""

from __future__ import annotations

import bisect
import multiprocessing
import os
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from dialer.pacing import Grant, Limit, Pacer, PacingUnavailable, rate_window

REDIS_URL = os.environ.get("PACING_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def pacer(client: redis.Redis) -> Pacer:
    return Pacer(client)


def _server_us(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1_000_000 + int(micros)


def _lease() -> str:
    return uuid.uuid4().hex


@pytest.mark.parametrize(
    ("cps", "expected"),
    [
        (10, (10, 1_000_000)),
        (20.0, (20, 1_000_000)),
        (1, (1, 1_000_000)),
        (0.5, (1, 2_000_000)),
        (0.3, (1, 3_333_334)),
        # 2 per 0.8 s would allow 4 calls within 0.81 s: above 2.5 in a 1 s window.
        (2.5, (2, 1_000_000)),
    ],
)
def test_rate_window_never_allows_more_than_cps_in_one_second(
    cps: float, expected: tuple[int, int]
) -> None:
    assert rate_window(cps=cps) == expected


@pytest.mark.slow
def test_burst_at_10_cps_grants_exactly_10_and_says_when_the_next_slot_frees(
    pacer: Pacer, client: redis.Redis
) -> None:
    limits = [Limit(scope="trunk:3", cps=10)]
    grants = [pacer.acquire(lease_id=_lease(), limits=limits) for _ in range(50)]

    granted = [g for g in grants if g.ok]
    denied = [g for g in grants if not g.ok]
    assert len(granted) == 10
    assert grants[:10] == granted  # the first ten, then nothing
    assert {g.denied_by for g in denied} == {"trunk:3:cps"}
    # Grant times are the server's, in microseconds (not rounded by Lua's number formatting).
    first = granted[0].granted_at_us
    assert first is not None
    now = _server_us(client)
    assert 0 <= now - first < 1_000_000
    # The slot frees when the first grant is 1 s old: no sooner than that, and not much later.
    elapsed_ms = (now - first) / 1000
    last_retry = denied[-1].retry_after_ms
    assert 1000 - elapsed_ms - 2 <= last_retry <= 1000
    assert all(0 < g.retry_after_ms <= 1000 for g in denied)

    time.sleep(last_retry / 1000)  # the rate window itself: time passing is what is tested
    assert pacer.acquire(lease_id=_lease(), limits=limits).ok


@pytest.mark.slow
def test_half_a_call_per_second_allows_one_call_every_two_seconds(pacer: Pacer) -> None:
    limits = [Limit(scope="campaign:17", cps=0.5)]
    assert pacer.acquire(lease_id=_lease(), limits=limits).ok

    denied = pacer.acquire(lease_id=_lease(), limits=limits)
    assert not denied.ok
    assert denied.denied_by == "campaign:17:cps"
    assert 1900 <= denied.retry_after_ms <= 2000

    time.sleep(1.0)  # half of the 2 s interval passes, as the rate says it must
    still = pacer.acquire(lease_id=_lease(), limits=limits)
    assert not still.ok
    assert 0 < still.retry_after_ms <= 1000

    time.sleep(still.retry_after_ms / 1000)  # and the rest of it
    assert pacer.acquire(lease_id=_lease(), limits=limits).ok


def _hammer(url: str, scope: str, cps: float, barrier: Any, run_s: float, out: Any) -> None:
    """One engine process: take trunk slots as fast as pacing allows until the run ends."""
    pacer = Pacer(redis.Redis.from_url(url))
    limits = [Limit(scope=scope, cps=cps)]
    times: list[int] = []
    barrier.wait(timeout=30)
    end = time.monotonic() + run_s
    while (remaining := end - time.monotonic()) > 0:
        lease_id = _lease()
        grant = pacer.wait_and_acquire(lease_id=lease_id, limits=limits, timeout_s=remaining)
        if grant.ok:
            assert grant.granted_at_us is not None
            times.append(grant.granted_at_us)
            pacer.release(lease_id=lease_id, scopes=[scope])
    out.put(times)


@pytest.mark.slow
def test_four_processes_never_exceed_the_trunk_limit_and_sustain_it(client: redis.Redis) -> None:
    limit, workers, run_s = 20, 4, 5.0
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_hammer, args=(REDIS_URL, "trunk:bench", limit, barrier, run_s, out))
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    try:
        per_worker = [out.get(timeout=run_s + 30) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    assert all(proc.exitcode == 0 for proc in procs)
    assert all(per_worker), "every worker got some grants"

    times = sorted(t for worker in per_worker for t in worker)
    # The busiest 1 s window starts at some grant: count from each grant over the next second.
    busiest = max(bisect.bisect_left(times, t + 1_000_000) - i for i, t in enumerate(times))
    assert busiest <= limit

    # Steady state: after the opening burst, three whole seconds inside the run.
    start = times[0] + 1_000_000
    steady = bisect.bisect_left(times, start + 3_000_000) - bisect.bisect_left(times, start)
    steady_cps = steady / 3
    # Finer: grant i + L waits for grant i to leave the window, so L calls take the mean of
    # those gaps (1 s plus how late the freed slot is taken).
    gaps = [later - earlier for earlier, later in zip(times, times[limit:], strict=False)]
    sustained_cps = limit * 1_000_000 / (sum(gaps) / len(gaps))
    lag_ms = sorted((gap - 1_000_000) / 1000 for gap in gaps)
    print(
        f"pacing: {workers} workers, L={limit} cps, {len(times)} grants "
        f"(per worker {[len(w) for w in per_worker]}): busiest 1 s window {busiest}, "
        f"steady {steady_cps:.2f} cps, sustained {sustained_cps:.3f} cps "
        f"({sustained_cps / limit:.2%} of L), slot reuse lag p50 {lag_ms[len(lag_ms) // 2]:.2f} ms "
        f"max {lag_ms[-1]:.2f} ms"
    )
    assert min(gaps) >= 1_000_000
    assert sustained_cps >= 0.95 * limit
    assert steady_cps >= 0.95 * limit


def test_fourth_concurrent_call_is_refused_until_a_channel_is_released(pacer: Pacer) -> None:
    limits = [Limit(scope="trunk:3", channels=3)]
    held = [_lease() for _ in range(3)]
    assert all(pacer.acquire(lease_id=lease, limits=limits).ok for lease in held)

    fourth = _lease()
    assert pacer.acquire(lease_id=fourth, limits=limits) == Grant(
        ok=False, retry_after_ms=0, denied_by="trunk:3:channels"
    )

    pacer.release(lease_id=held[0], scopes=["trunk:3"])
    assert pacer.acquire(lease_id=fourth, limits=limits).ok


@pytest.mark.slow
def test_a_lease_not_refreshed_expires_and_frees_its_channel(pacer: Pacer) -> None:
    limits = [Limit(scope="trunk:3", channels=1)]
    assert pacer.acquire(lease_id="dead-engine", limits=limits, lease_ttl_s=0.5).ok
    assert not pacer.acquire(lease_id="next", limits=limits).ok

    time.sleep(0.6)  # past the 0.5 s lease: its expiry is what is tested
    assert pacer.acquire(lease_id="next", limits=limits).ok
    # An expired lease is not revived by a late heartbeat: its channel now belongs to "next".
    pacer.refresh(lease_ids=["dead-engine"], scopes=["trunk:3"])
    assert not pacer.acquire(lease_id="third", limits=limits).ok


@pytest.mark.slow
def test_refresh_keeps_a_live_lease(pacer: Pacer) -> None:
    limits = [Limit(scope="trunk:3", channels=1)]
    assert pacer.acquire(lease_id="live", limits=limits, lease_ttl_s=0.5).ok

    time.sleep(0.3)  # these sleeps place the heartbeat and checks around the lease's TTL
    pacer.refresh(lease_ids=["live"], scopes=["trunk:3"], lease_ttl_s=0.5)
    time.sleep(0.4)  # 0.7 s after the grant, 0.4 s after the heartbeat
    assert not pacer.acquire(lease_id="other", limits=limits).ok

    time.sleep(0.2)  # the heartbeat stopped
    assert pacer.acquire(lease_id="other", limits=limits).ok


def test_a_denial_in_one_scope_records_nothing_in_the_others(
    pacer: Pacer, client: redis.Redis
) -> None:
    trunk = Limit(scope="trunk:3", cps=10, channels=5, daily=100, day="2026-11-24")
    full_campaign = Limit(scope="campaign:17", channels=0)

    grant = pacer.acquire(lease_id="a", limits=[trunk, full_campaign])

    assert grant == Grant(ok=False, denied_by="campaign:17:channels")
    assert client.zcard("pace:rate:trunk:3") == 0
    assert client.zcard("pace:chan:trunk:3") == 0
    assert client.get("pace:day:trunk:3:2026-11-24") is None
    assert client.exists("pace:lease:a") == 0


def test_a_rate_denial_in_the_second_scope_leaves_the_first_untouched(
    pacer: Pacer, client: redis.Redis
) -> None:
    cli = Limit(scope="cli:+911401234567", cps=1)
    assert pacer.acquire(lease_id="a", limits=[cli]).ok
    trunk = Limit(scope="trunk:3", cps=10, channels=5)

    grant = pacer.acquire(lease_id="b", limits=[trunk, cli])

    assert not grant.ok
    assert grant.denied_by == "cli:+911401234567:cps"
    assert 0 < grant.retry_after_ms <= 1000
    assert client.zcard("pace:rate:trunk:3") == 0
    assert client.zcard("pace:chan:trunk:3") == 0


def test_retrying_an_acquire_for_a_held_lease_counts_it_once(
    pacer: Pacer, client: redis.Redis
) -> None:
    limits = [Limit(scope="trunk:3", cps=10, channels=1, daily=5, day="2026-11-24")]
    first = pacer.acquire(lease_id="attempt-42", limits=limits)
    again = pacer.acquire(lease_id="attempt-42", limits=limits)

    assert first.ok and not first.already_held
    assert again.ok and again.already_held
    assert again.granted_at_us == first.granted_at_us
    assert client.zcard("pace:rate:trunk:3") == 1
    assert client.zcard("pace:chan:trunk:3") == 1
    assert client.get("pace:day:trunk:3:2026-11-24") == b"1"

    # Released, the same id is a new call and is counted again.
    pacer.release(lease_id="attempt-42", scopes=["trunk:3"])
    third = pacer.acquire(lease_id="attempt-42", limits=limits)
    assert third.ok and not third.already_held
    assert client.get("pace:day:trunk:3:2026-11-24") == b"2"


def test_daily_cap_counts_grants_per_day_and_then_refuses(
    pacer: Pacer, client: redis.Redis
) -> None:
    def limits(day: str) -> list[Limit]:
        return [Limit(scope="cli:+911401234567", daily=3, day=day)]

    assert all(pacer.acquire(lease_id=_lease(), limits=limits("2026-11-24")).ok for _ in range(3))
    refused = pacer.acquire(lease_id=_lease(), limits=limits("2026-11-24"))
    assert refused == Grant(ok=False, denied_by="cli:+911401234567:daily")
    # The callee's next day starts a new count.
    assert pacer.acquire(lease_id=_lease(), limits=limits("2026-11-25")).ok
    ttl = client.ttl("pace:day:cli:+911401234567:2026-11-24")
    assert 86_400 < ttl <= 2 * 86_400


def test_every_key_expires_so_redis_keeps_no_garbage(pacer: Pacer, client: redis.Redis) -> None:
    limits = [
        Limit(scope="trunk:3", cps=20, channels=10),
        Limit(scope="campaign:17", cps=0.5),
        Limit(scope="cli:+911401234567", daily=10, day="2026-11-24"),
    ]
    assert pacer.acquire(lease_id="a", limits=limits, lease_ttl_s=5).ok
    pacer.refresh(lease_ids=["a"], scopes=[limit.scope for limit in limits], lease_ttl_s=5)
    pacer.release(lease_id="a", scopes=["trunk:3"])

    keys = client.keys("*")
    assert keys
    ttls = {(key.decode() if isinstance(key, bytes) else key): client.pttl(key) for key in keys}
    assert all(ttl > 0 for ttl in ttls.values()), ttls
    assert 0 < ttls["pace:rate:trunk:3"] <= 2_000
    assert 0 < ttls["pace:rate:campaign:17"] <= 3_000
    assert 0 < ttls["pace:chan:campaign:17"] <= 6_000


@pytest.mark.slow
def test_wait_and_acquire_waits_for_the_rate_slot(pacer: Pacer) -> None:
    limits = [Limit(scope="trunk:3", cps=2)]
    assert all(pacer.acquire(lease_id=_lease(), limits=limits).ok for _ in range(2))

    started = time.monotonic()
    grant = pacer.wait_and_acquire(lease_id=_lease(), limits=limits, timeout_s=2)
    waited = time.monotonic() - started

    assert grant.ok
    assert 0.8 < waited < 1.2


def test_wait_and_acquire_gives_up_at_once_when_waiting_cannot_help(pacer: Pacer) -> None:
    daily = [Limit(scope="cli:+911401234567", daily=0, day="2026-11-24")]
    slow = [Limit(scope="campaign:17", cps=0.5)]
    assert pacer.acquire(lease_id=_lease(), limits=slow).ok

    started = time.monotonic()
    capped = pacer.wait_and_acquire(lease_id=_lease(), limits=daily, timeout_s=5)
    # The next slot is 2 s away, past the 0.5 s deadline.
    too_late = pacer.wait_and_acquire(lease_id=_lease(), limits=slow, timeout_s=0.5)

    assert capped.denied_by == "cli:+911401234567:daily"
    assert too_late.denied_by == "campaign:17:cps"
    assert time.monotonic() - started < 0.2


def test_wait_and_acquire_polls_for_a_channel_until_the_deadline(pacer: Pacer) -> None:
    limits = [Limit(scope="trunk:3", channels=1)]
    assert pacer.acquire(lease_id="busy", limits=limits).ok

    started = time.monotonic()
    grant = pacer.wait_and_acquire(lease_id=_lease(), limits=limits, timeout_s=0.3)

    assert grant.denied_by == "trunk:3:channels"
    assert 0.3 <= time.monotonic() - started < 0.6


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_redis_raises_pacing_unavailable_so_the_caller_does_not_dial() -> None:
    pacer = Pacer.from_url(f"redis://127.0.0.1:{_closed_port()}/12")
    limits = [Limit(scope="trunk:3", cps=10)]

    started = time.monotonic()
    with pytest.raises(PacingUnavailable):
        pacer.acquire(lease_id=_lease(), limits=limits)
    with pytest.raises(PacingUnavailable):
        pacer.wait_and_acquire(lease_id=_lease(), limits=limits, timeout_s=5)
    with pytest.raises(PacingUnavailable):
        pacer.release(lease_id="a", scopes=["trunk:3"])
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scope": ""},
        {"scope": "trunk:3", "cps": 0},
        {"scope": "trunk:3", "cps": float("nan")},
        {"scope": "trunk:3", "channels": -1},
        {"scope": "trunk:3", "daily": 5},  # a daily cap without the callee's day
    ],
)
def test_nonsense_limits_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Limit(**kwargs)
