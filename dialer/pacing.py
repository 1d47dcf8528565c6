"""Distributed pacing: calls per second, concurrent channels and daily caps, shared through Redis.

Every engine process on every host calls `Pacer.acquire` right before it sends an INVITE and
`Pacer.release` when the call ends. The decision is one Lua script (`pacing.lua`) on the Redis
server's clock, so two callers can never both take the last slot, and worker clock skew does not
matter. Key layout, under the prefix (default ``pace:``):

- ``lease:<lease id>``: a held lease (the grant's server time); expires with the lease;
- ``rate:<scope>``: ZSET of grant times (us) within the rate window; expires when idle;
- ``chan:<scope>``: ZSET of live lease ids scored by expiry; expired leases drop out on every call;
- ``day:<scope>:<day>``: grants counted on the caller's day; expires about two days after use.

Every key a script touches is passed in KEYS, so a hash-tagged prefix such as ``{pace}:`` keeps
them in one slot on Redis Cluster.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
from django.conf import settings
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

_ACQUIRE_LUA = Path(__file__).with_name("pacing.lua").read_text()

# KEYS: lease key, then the scopes' channel keys. ARGV: lease id. Returns 1 if the lease was held.
_RELEASE_LUA = """
local held = redis.call('DEL', KEYS[1])
for i = 2, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
return held
"""

# KEYS: m lease keys, then the scopes' channel keys. ARGV: ttl_ms, m, the m lease ids.
# Only leases still held are extended: reviving an expired one could exceed a channel limit that
# another call has filled since. Returns how many leases were live.
_REFRESH_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl_ms = tonumber(ARGV[1])
local m = tonumber(ARGV[2])
local expiry = string.format('%d', now + ttl_ms * 1000)
for j = m + 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[j], '-inf', string.format('%d', now))
end
local live = 0
for i = 1, m do
  if redis.call('PEXPIRE', KEYS[i], ttl_ms) == 1 then
    live = live + 1
    for j = m + 1, #KEYS do
      redis.call('ZADD', KEYS[j], 'XX', expiry, ARGV[2 + i])
    end
  end
end
for j = m + 1, #KEYS do
  if redis.call('PTTL', KEYS[j]) < ttl_ms + 1000 then
    redis.call('PEXPIRE', KEYS[j], ttl_ms + 1000)
  end
end
return live
"""

# A failover in progress answers writes with READONLY: as unavailable as a refused connection.
_UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ReadOnlyError)


def lease_id(attempt_id: int) -> str:
    """The lease an attempt's call holds: taken with its pacing slot, released when it ends."""
    return f"attempt:{attempt_id}"


class PacingUnavailable(Exception):
    """Redis could not be reached: the caller must fail closed and not dial."""


@dataclass(frozen=True, slots=True)
class Limit:
    """The limits of one scope ("trunk:3", "campaign:17", "cli:+911401234567"); None = unlimited.

    `day` is the callee's local day ("2026-11-24"), computed by the caller, that `daily` counts in.
    """

    scope: str
    cps: float | None = None
    channels: int | None = None
    daily: int | None = None
    day: str | None = None

    def __post_init__(self) -> None:
        if not self.scope:
            raise ValueError("a limit needs a scope")
        if self.cps is not None and not (math.isfinite(self.cps) and self.cps > 0):
            raise ValueError(f"{self.scope}: cps must be a positive number, not {self.cps!r}")
        if self.channels is not None and self.channels < 0:
            raise ValueError(f"{self.scope}: channels must be >= 0, not {self.channels!r}")
        if self.daily is not None and self.daily < 0:
            raise ValueError(f"{self.scope}: daily must be >= 0, not {self.daily!r}")
        if self.daily is not None and not self.day:
            raise ValueError(f"{self.scope}: a daily cap needs the callee's day")


@dataclass(frozen=True, slots=True)
class Grant:
    """The answer to one acquire.

    `denied_by` is "<scope>:cps", "<scope>:channels" or "<scope>:daily"; `retry_after_ms` is set
    only for a rate denial. `granted_at_us` is the Redis server time of the grant (the original
    grant when `already_held`).
    """

    ok: bool
    retry_after_ms: int = 0
    denied_by: str | None = None
    granted_at_us: int | None = None
    already_held: bool = False

    @property
    def denied_kind(self) -> str | None:
        """ "cps", "channels" or "daily" when denied."""
        return self.denied_by.rpartition(":")[2] if self.denied_by else None


def rate_window(*, cps: float) -> tuple[int, int]:
    """(N, W): at most N grants in any window of W microseconds.

    N = max(1, floor(cps)), W = max(1 s, N / cps). Below 1 cps that is one call per 1/cps seconds
    (0.5 -> 1 per 2 s). Above it the window never shrinks under 1 s: a window of N / cps < 1 s
    would let a 1 s window hold up to 2N > cps calls (2.5 cps -> 2 per 0.8 s -> 4 in 0.81 s), and
    no 1 s window above the trunk limit is the promise; so a fractional cps above 1 paces at
    floor(cps) per second.
    """
    n = max(1, math.floor(cps))
    return n, max(1_000_000, math.ceil(1_000_000 * n / cps))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Pacer:
    """Atomic pacing decisions shared by every engine process through one Redis."""

    def __init__(self, client: redis.Redis, prefix: str = "pace:", *, guard_ms: int = 0) -> None:
        self._client = client
        self._prefix = prefix
        # Widens every rate window: a grant is not the INVITE on the wire, and the few ms
        # between them vary (DB claim, the engine's loop). Measured at the carrier (SIPp),
        # 1 s windows without a guard held L + 1 calls now and then.
        self._guard_us = guard_ms * 1000
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._release = client.register_script(_RELEASE_LUA)
        self._refresh = client.register_script(_REFRESH_LUA)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "pace:", timeout_s: float = 0.5, guard_ms: int = 0
    ) -> Pacer:
        """A pacer whose client gives up fast: the dial path must fail closed, not hang.

        redis-py's default client retries a refused connection ten times (about 3 s).
        """
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1),
        )
        return cls(client, prefix, guard_ms=guard_ms)

    def _lease_key(self, lease_id: str) -> str:
        return f"{self._prefix}lease:{lease_id}"

    def _chan_key(self, scope: str) -> str:
        return f"{self._prefix}chan:{scope}"

    def _call(self, what: str, run: Callable[[], _T]) -> _T:
        try:
            return run()
        except _UNAVAILABLE as exc:
            logger.warning("pacing %s: Redis unavailable (%s)", what, exc)
            raise PacingUnavailable(str(exc)) from exc

    def acquire(
        self, *, lease_id: str, limits: Sequence[Limit], lease_ttl_s: float = 30.0
    ) -> Grant:
        """Take one call slot in every scope of `limits`, or none: the decision is atomic in Redis.

        Acquiring a lease id that is still held returns ok again without counting it twice.
        Raises PacingUnavailable when Redis cannot be reached.
        """
        if not lease_id:
            raise ValueError("a lease needs an id")
        scopes = [limit.scope for limit in limits]
        if len(set(scopes)) != len(scopes):
            raise ValueError(f"each scope may appear once: {scopes}")
        ttl_ms = max(1, round(lease_ttl_s * 1000))
        keys: list[str] = [self._lease_key(lease_id)]
        args: list[str | int] = [lease_id, ttl_ms, len(limits)]
        for limit in limits:
            keys += [
                f"{self._prefix}rate:{limit.scope}",
                self._chan_key(limit.scope),
                f"{self._prefix}day:{limit.scope}:{limit.day or ''}",
            ]
            rate: tuple[int | str, int | str] = ("", "")
            if limit.cps is not None:
                rate_n, window_us = rate_window(cps=limit.cps)
                rate = (rate_n, window_us + self._guard_us)
            args += [
                limit.scope,
                *rate,
                "" if limit.channels is None else limit.channels,
                "" if limit.daily is None else limit.daily,
            ]
        ok, retry_ms, denied_by, granted_at, held = self._call(
            "acquire", lambda: self._acquire(keys=keys, args=args)
        )
        return Grant(
            ok=bool(ok),
            retry_after_ms=int(retry_ms),
            denied_by=_text(denied_by) or None,
            granted_at_us=int(_text(granted_at)) if ok else None,
            already_held=bool(held),
        )

    def backoff(self, *, scope: str, base_ms: int = 1000, cap_ms: int = 60_000) -> int:
        """Hold a scope (a trunk that answered 503 or 403: over its limit) for a while, doubling
        with each strike in a row up to cap_ms. Returns the hold in ms."""
        strikes_key, hold_key = f"{self._prefix}strikes:{scope}", f"{self._prefix}hold:{scope}"

        def run() -> int:
            strikes = int(self._client.incr(strikes_key))
            self._client.expire(strikes_key, 600)
            hold_ms = min(cap_ms, base_ms * 2 ** min(strikes - 1, 16))
            self._client.set(hold_key, 1, px=hold_ms)
            return hold_ms

        return self._call("backoff", run)

    def clear_backoff(self, *, scope: str) -> None:
        """The scope answered normally again: the next strike starts from base_ms."""
        self._call("clear_backoff", lambda: self._client.delete(f"{self._prefix}strikes:{scope}"))

    def held_back(self, *, scope: str) -> bool:
        return bool(
            self._call("held_back", lambda: self._client.exists(f"{self._prefix}hold:{scope}"))
        )

    def release(self, *, lease_id: str, scopes: Sequence[str]) -> None:
        """Give the lease's channel back in every scope; the call still counts in rate and day."""
        keys = [self._lease_key(lease_id), *(self._chan_key(scope) for scope in scopes)]
        self._call("release", lambda: self._release(keys=keys, args=[lease_id]))

    def refresh(
        self, *, lease_ids: Sequence[str], scopes: Sequence[str], lease_ttl_s: float = 30.0
    ) -> None:
        """Extend live leases to `lease_ttl_s` from now (the engine heartbeat, for its live calls).

        A lease that has already expired stays expired: its channel may be in use by another call.
        """
        if not lease_ids:
            return
        ttl_ms = max(1, round(lease_ttl_s * 1000))
        keys = [
            *(self._lease_key(lease_id) for lease_id in lease_ids),
            *(self._chan_key(scope) for scope in scopes),
        ]
        args: list[str | int] = [ttl_ms, len(lease_ids), *lease_ids]
        live = self._call("refresh", lambda: self._refresh(keys=keys, args=args))
        if int(live) < len(lease_ids):
            logger.warning(
                "pacing refresh: %d of %d leases had already expired",
                len(lease_ids) - int(live),
                len(lease_ids),
            )

    def wait_and_acquire(
        self,
        *,
        lease_id: str,
        limits: Sequence[Limit],
        timeout_s: float,
        lease_ttl_s: float = 30.0,
        channel_poll_s: float = 0.05,
    ) -> Grant:
        """Acquire, waiting up to `timeout_s` for a rate slot or a channel; returns the last answer.

        A daily cap is returned at once (waiting does not lift it), and so is a rate denial whose
        slot frees only after the deadline.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            grant = self.acquire(lease_id=lease_id, limits=limits, lease_ttl_s=lease_ttl_s)
            if grant.ok or grant.denied_kind == "daily":
                return grant
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return grant
            if grant.retry_after_ms:
                pause = grant.retry_after_ms / 1000
                # Grant times only age, so the slot cannot free any sooner than this.
                if pause > remaining:
                    return grant
            else:
                # A channel frees on a release we are not told about: poll.
                pause = min(channel_poll_s, remaining)
            time.sleep(pause)


def pacer_from_settings() -> Pacer | None:
    """The pacer of settings.REDIS_URL, or None: without Redis (the embedded set-up) calls are
    paced per dispatch tick only."""
    if not settings.REDIS_URL:
        return None
    return Pacer.from_url(settings.REDIS_URL, guard_ms=settings.PACING_GUARD_MS)
