-- Distributed pacing: one atomic decision per INVITE, on the Redis server's clock.
--
-- Redis runs a script to completion before any other command, so the check-then-record below is
-- race-free across every engine process on every host; worker clocks are never consulted.
--
-- KEYS[1]          lease key (value: the grant's server time in microseconds)
-- KEYS[3i-1]       rate ZSET of limit i   (member "<us>:<lease>", score: grant time in us)
-- KEYS[3i]         channel ZSET of limit i (member: lease id, score: lease expiry in us)
-- KEYS[3i+1]       daily counter of limit i for the caller's day
-- ARGV[1]          lease id
-- ARGV[2]          lease ttl in ms
-- ARGV[3]          number of limits n
-- ARGV[3+5(i-1)+1..5]  scope, rate_n, rate_window_us, channels, daily ('' = no such limit)
--
-- Returns {ok, retry_after_ms, denied_by, granted_at_us, already_held}.

-- Lua 5.1 turns numbers into strings with %.14g, which would round a 16-digit microsecond time:
-- every time that goes back to Redis is formatted as an integer here.
local function us(x)
  return string.format('%d', x)
end

-- Extend, never shorten: another caller may hold a longer lease in the same set.
local function keep_at_least(key, ms)
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, ms)
  end
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local lease_id = ARGV[1]
local ttl_ms = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local expiry = now + ttl_ms * 1000
-- Sets outlive their newest member by a margin, then vanish when idle.
local margin_ms = 1000
local day_ms = 2 * 86400 * 1000

-- A retried acquire (Celery redelivery, engine retry) for a lease still held is the same call:
-- extend it, count nothing again.
local held = redis.call('GET', KEYS[1])
if held then
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
  for i = 1, n do
    local chan_key = KEYS[3 * i]
    redis.call('ZADD', chan_key, 'XX', us(expiry), lease_id)
    keep_at_least(chan_key, ttl_ms + margin_ms)
  end
  return {1, 0, '', held, 1}
end

-- Check every limit before recording anything: a grant is all or nothing.
local deny_daily, deny_channels, deny_rate = nil, nil, nil
local retry_ms = 0
for i = 1, n do
  local b = 3 + 5 * (i - 1)
  local scope = ARGV[b + 1]
  local rate_key, chan_key, day_key = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]

  -- Dropping expired leases on every call is what returns a dead engine's channels.
  redis.call('ZREMRANGEBYSCORE', chan_key, '-inf', us(now))

  if ARGV[b + 5] ~= '' and not deny_daily then
    local used = tonumber(redis.call('GET', day_key) or '0')
    if used >= tonumber(ARGV[b + 5]) then
      deny_daily = scope .. ':daily'
    end
  end

  if ARGV[b + 4] ~= '' and not deny_channels then
    if redis.call('ZCARD', chan_key) >= tonumber(ARGV[b + 4]) then
      deny_channels = scope .. ':channels'
    end
  end

  if ARGV[b + 2] ~= '' then
    local limit = tonumber(ARGV[b + 2])
    local window = tonumber(ARGV[b + 3])
    -- Keep grants in (now - window, now]: then no half-open window of that length ever holds
    -- more than `limit` grants.
    redis.call('ZREMRANGEBYSCORE', rate_key, '-inf', us(now - window))
    local count = redis.call('ZCARD', rate_key)
    if count >= limit then
      -- The grant that has to age out before the count drops below the limit.
      local first = redis.call('ZRANGE', rate_key, count - limit, count - limit, 'WITHSCORES')
      local wait_ms = math.max(1, math.ceil((tonumber(first[2]) + window - now) / 1000))
      -- All limits must pass, so the caller waits for the slowest one.
      if wait_ms > retry_ms then
        retry_ms = wait_ms
      end
      deny_rate = deny_rate or (scope .. ':cps')
    end
  end
end

-- A daily cap does not lift by waiting and a full channel set lifts only on a release; report
-- those before a rate denial so a waiting caller does not spin on them.
if deny_daily then
  return {0, 0, deny_daily, '', 0}
end
if deny_channels then
  return {0, 0, deny_channels, '', 0}
end
if deny_rate then
  return {0, retry_ms, deny_rate, '', 0}
end

for i = 1, n do
  local b = 3 + 5 * (i - 1)
  local rate_key, chan_key, day_key = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  -- Every scope tracks its live leases, limited or not, so a limit added later counts the calls
  -- already up, and concurrent calls per scope can be read off the set.
  redis.call('ZADD', chan_key, us(expiry), lease_id)
  keep_at_least(chan_key, ttl_ms + margin_ms)
  if ARGV[b + 2] ~= '' then
    redis.call('ZADD', rate_key, us(now), us(now) .. ':' .. lease_id)
    redis.call('PEXPIRE', rate_key, math.ceil(tonumber(ARGV[b + 3]) / 1000) + margin_ms)
  end
  if ARGV[b + 5] ~= '' then
    redis.call('INCR', day_key)
    keep_at_least(day_key, day_ms)
  end
end
redis.call('SET', KEYS[1], us(now), 'PX', ttl_ms)
return {1, 0, '', us(now), 0}
