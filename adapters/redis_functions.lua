#!lua name=wsrelay
-- The wsrelay Redis Function library (docs/scaling.md "History" and "The fleet"). Every relay
-- whose configuration calls it (conf/redis_functions_needed.h) loads it with FUNCTION LOAD
-- REPLACE on each connection to a master before it reports the broker up; the source is built
-- into the relay (adapters/redis_functions.h), which changes only the publish command below for a
-- Redis Cluster. Redis 7.0 or later. A fleet call to function <f> is
-- FCALL wsrelay_<f> 1 <prefix + key> <args...>; each fleet feature adds its functions in its own
-- block below the history ones.
--
--   FCALL wsrelay_publish 1 <channel> <data> <history_size> <history_ttl_ms>
--     appends <data> to the channel's history, trims it to about <history_size> entries and
--     publishes it with its position; returns {offset, epoch, trimmed}: trimmed counts the entries
--     this call deleted (XTRIM MAXLEN ~ removes whole stream nodes, so mostly 0, now and then a
--     node's worth). A relay takes {offset, epoch} (a library loaded by an older relay) as
--     trimmed 0, and ignores elements after the third.
--   FCALL wsrelay_history 1 <channel> <after> <limit> <newest 0|1> <history_size> <history_ttl_ms>
--     returns {offset, epoch, o1, d1, o2, d2, ...}: the channel's position, then at most <limit>
--     entries with offsets above <after> among the last <history_size> (the newest ones when
--     <newest> is 1, else the oldest), in ascending order
--
-- The one declared key is the Redis channel name itself, so that a cluster client sends the call
-- to the channel's slot. The two keys of a channel's history are derived from it in that slot:
-- when the name holds a hash tag, wsrelay:<name>:s (a stream) and wsrelay:<name>:m (a hash);
-- otherwise wsrelay:{<name>}:s and wsrelay:{<name>}:m. Stream entry ids are <offset>-0 with one
-- field, d = the data as published. The hash holds o (the top offset) and e (the epoch). Both
-- expire <history_ttl_ms> after the last publish; the epoch is remade when the hash is gone.

-- Standalone and Sentinel: PUBLISH. A Redis Cluster gets SPUBLISH (sharded pub/sub).
local PUBLISH = 'PUBLISH'
-- The position envelope in front of the data on pub/sub: US offset US epoch US (0x1F).
local US = '\31'

local function history_keys(channel)
    local open = string.find(channel, '{', 1, true)
    if open then
        local close = string.find(channel, '}', open + 1, true)
        if close and close > open + 1 then
            return 'wsrelay:' .. channel .. ':s', 'wsrelay:' .. channel .. ':m'
        end
    end
    return 'wsrelay:{' .. channel .. '}:s', 'wsrelay:{' .. channel .. '}:m'
end

local function count(value, name)
    local n = tonumber(value)
    if not n or n < 0 or n ~= math.floor(n) or n > 9007199254740991 then
        error('wsrelay: ' .. name .. ' must be a whole number >= 0, got ' .. tostring(value))
    end
    return n
end

-- The channel's epoch, made from the server's clock when the history has none (never written,
-- expired, or lost with a restart); `made` says so. A history kept without its hash (evicted
-- alone) is dropped with it: offsets start again at 1.
local function epoch_of(stream, meta, ttl)
    local epoch = redis.call('HGET', meta, 'e')
    if epoch then
        return epoch, false
    end
    local now = redis.call('TIME')
    epoch = string.format('%x%05x', tonumber(now[1]), tonumber(now[2]))
    redis.call('DEL', stream)
    redis.call('HSET', meta, 'e', epoch)
    if ttl > 0 then
        redis.call('PEXPIRE', meta, ttl)
    end
    return epoch, true
end

local function publish(keys, args)
    local channel = keys[1]
    local data = args[1]
    if not channel or not data then
        error('wsrelay_publish: 1 <channel> <data> <history_size> <history_ttl_ms>')
    end
    local size = count(args[2], 'history_size')
    local ttl = count(args[3], 'history_ttl_ms')
    if size < 1 then
        error('wsrelay: history_size must be at least 1')
    end
    local stream, meta = history_keys(channel)
    local epoch = epoch_of(stream, meta, ttl)
    local offset = redis.call('HINCRBY', meta, 'o', 1)
    redis.call('XADD', stream, string.format('%d-0', offset), 'd', data)
    local trimmed = redis.call('XTRIM', stream, 'MAXLEN', '~', size)
    if ttl > 0 then
        redis.call('PEXPIRE', stream, ttl)
        redis.call('PEXPIRE', meta, ttl)
    end
    redis.call(PUBLISH, channel, US .. string.format('%d', offset) .. US .. epoch .. US .. data)
    return {offset, epoch, trimmed}
end

local function history(keys, args)
    local channel = keys[1]
    if not channel then
        error('wsrelay_history: 1 <channel> <after> <limit> <newest> <history_size> <history_ttl_ms>')
    end
    local after = count(args[1], 'after')
    local limit = count(args[2], 'limit')
    local newest = args[3] == '1'
    local size = count(args[4], 'history_size')
    local ttl = count(args[5], 'history_ttl_ms')
    local stream, meta = history_keys(channel)
    -- A read makes the epoch too, so the position it hands out holds for the next publish.
    local epoch = epoch_of(stream, meta, ttl)
    local top = tonumber(redis.call('HGET', meta, 'o') or '0')
    local reply = {top, epoch}
    -- Only the last <history_size>: MAXLEN ~ may keep a few more.
    local first = math.max(after, top - size) + 1
    if limit == 0 or first > top then
        return reply
    end
    local entries
    if newest then
        entries = redis.call('XREVRANGE', stream, string.format('%d-0', top),
            string.format('%d-0', first), 'COUNT', limit)
    else
        entries = redis.call('XRANGE', stream, string.format('%d-0', first),
            string.format('%d-0', top), 'COUNT', limit)
    end
    local from, to, step = 1, #entries, 1
    if newest then
        from, to, step = #entries, 1, -1
    end
    for i = from, to, step do
        local entry = entries[i]
        local fields = entry[2]
        local data = ''
        for f = 1, #fields, 2 do
            if fields[f] == 'd' then
                data = fields[f + 1]
            end
        end
        reply[#reply + 1] = tonumber(string.match(entry[1], '^(%d+)'))
        reply[#reply + 1] = data
    end
    return reply
end

redis.register_function('wsrelay_publish', publish)
redis.register_function('wsrelay_history', history)

-- Per-user connection limit (docs/scaling.md "Per-user limit"). The key is the fleet's key
-- (wsrelay:{fleet}, prefixed); a user's connections are the sorted set <key>:u:<user> in its slot,
-- member = connection id, score = when it was admitted (the server's clock, µs). Redis deletes the
-- set with its last member; its expiry only bounds what entries of a relay that died without a
-- user_leave could cost the user.
--
--   FCALL wsrelay_user_admit 1 <fleet key> <user> <connection> <limit> <policy> <ttl_ms>
--     admits <connection> unless the user already holds <limit> others: {'admit'}; over it,
--     with <policy> refuse: {'refuse', held}, nothing changed; with evict_oldest: the oldest are
--     removed to make room and it is admitted: {'evict', oldest id, ...}. A connection already in
--     the set is admitted again as it is (a retried call).
--   FCALL wsrelay_user_leave 1 <fleet key> <user> <connection> ...
--     removes those connections of the user; returns how many were there.

local function user_admit(keys, args)
    local base, user, connection, policy = keys[1], args[1], args[2], args[4]
    if not base or not user or not connection or (policy ~= 'refuse' and policy ~= 'evict_oldest') then
        error('wsrelay_user_admit: 1 <fleet key> <user> <connection> <limit> <refuse|evict_oldest> <ttl_ms>')
    end
    local limit = count(args[3], 'limit')
    local ttl = count(args[5], 'ttl_ms')
    if limit < 1 then
        error('wsrelay: limit must be at least 1')
    end
    local set = base .. ':u:' .. user
    if redis.call('ZSCORE', set, connection) then
        return {'admit'}
    end
    local held = redis.call('ZCARD', set)
    local reply = {'admit'}
    if held >= limit then
        if policy == 'refuse' then
            return {'refuse', held}
        end
        reply = {'evict'}
        local oldest = redis.call('ZRANGE', set, 0, held - limit)
        for i = 1, #oldest do
            reply[#reply + 1] = oldest[i]
        end
        redis.call('ZREM', set, unpack(oldest))
    end
    local now = redis.call('TIME')
    redis.call('ZADD', set, tonumber(now[1]) * 1000000 + tonumber(now[2]), connection)
    if ttl > 0 then
        redis.call('PEXPIRE', set, ttl)
    end
    return reply
end

local function user_leave(keys, args)
    local base, user = keys[1], args[1]
    if not base or not user or #args < 2 then
        error('wsrelay_user_leave: 1 <fleet key> <user> <connection> ...')
    end
    return redis.call('ZREM', base .. ':u:' .. user, unpack(args, 2))
end

redis.register_function('wsrelay_user_admit', user_admit)
redis.register_function('wsrelay_user_leave', user_leave)
