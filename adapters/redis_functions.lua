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

-- Presence (docs/scaling.md "Presence"): who is subscribed to a channel, fleet-wide.
--
--   FCALL wsrelay_presence_join 1 <channel> <ttl_ms> <connection> <member> [<connection> <member>...]
--     adds or refreshes members (a member is its JSON text, keyed by its connection id), each to
--     expire <ttl_ms> from now unless joined again (its relay refreshes it); returns {added, clients}:
--     the members that were not there, and the members after the call.
--   FCALL wsrelay_presence_leave 1 <channel> <connection>...
--     removes those members; returns the number removed.
--   FCALL wsrelay_presence_get 1 <channel> <max>
--     returns {cut, m1, m2, ...}: at most <max> members' JSON; cut is 1 when more were left out.
--   FCALL wsrelay_presence_stats 1 <channel>
--     returns {clients, users}: members, and distinct non-null users among them.
--
-- Keys, in the channel's slot as history's: wsrelay:{<name>}:p (a hash connection -> member) and
-- wsrelay:{<name>}:pz (a sorted set connection -> expiry in ms of the server's clock); both expire
-- <ttl_ms> after the last join. Every call first removes the members whose expiry has passed, so a
-- dead relay's members are gone <ttl_ms> after its last refresh at the latest.

local function presence_keys(channel)
    local open = string.find(channel, '{', 1, true)
    if open then
        local close = string.find(channel, '}', open + 1, true)
        if close and close > open + 1 then
            return 'wsrelay:' .. channel .. ':p', 'wsrelay:' .. channel .. ':pz'
        end
    end
    return 'wsrelay:{' .. channel .. '}:p', 'wsrelay:{' .. channel .. '}:pz'
end

local function now_ms()
    local now = redis.call('TIME')
    return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

-- Lua's unpack() is bounded by the C stack: commands take their arguments in slices.
local SLICE = 512

local function remove_members(members, zset, ids, first, last)
    local removed = 0
    local i = first
    while i <= last do
        local j = math.min(i + SLICE - 1, last)
        removed = removed + redis.call('HDEL', members, unpack(ids, i, j))
        redis.call('ZREM', zset, unpack(ids, i, j))
        i = j + 1
    end
    return removed
end

local function prune(members, zset, now)
    local gone = redis.call('ZRANGEBYSCORE', zset, '-inf', now)
    if #gone > 0 then
        remove_members(members, zset, gone, 1, #gone)
    end
end

local function presence_join(keys, args)
    local channel = keys[1]
    if not channel or #args < 3 or #args % 2 ~= 1 then
        error('wsrelay_presence_join: 1 <channel> <ttl_ms> <connection> <member> ...')
    end
    local ttl = count(args[1], 'ttl_ms')
    if ttl < 1 then
        error('wsrelay: ttl_ms must be at least 1')
    end
    local members, zset = presence_keys(channel)
    local now = now_ms()
    prune(members, zset, now)
    local added = 0
    for i = 2, #args, 2 do
        added = added + redis.call('HSET', members, args[i], args[i + 1])
        redis.call('ZADD', zset, now + ttl, args[i])
    end
    redis.call('PEXPIRE', members, ttl)
    redis.call('PEXPIRE', zset, ttl)
    return {added, redis.call('ZCARD', zset)}
end

local function presence_leave(keys, args)
    local channel = keys[1]
    if not channel then
        error('wsrelay_presence_leave: 1 <channel> <connection>...')
    end
    if #args == 0 then
        return 0
    end
    local members, zset = presence_keys(channel)
    return remove_members(members, zset, args, 1, #args)
end

local function presence_get(keys, args)
    local channel = keys[1]
    if not channel then
        error('wsrelay_presence_get: 1 <channel> <max>')
    end
    local max = count(args[1], 'max')
    local members, zset = presence_keys(channel)
    prune(members, zset, now_ms())
    local ids = redis.call('ZRANGE', zset, 0, max)
    local cut = 0
    if #ids > max then
        cut = 1
        ids[#ids] = nil
    end
    local reply = {cut}
    local i = 1
    while i <= #ids do
        local j = math.min(i + SLICE - 1, #ids)
        local values = redis.call('HMGET', members, unpack(ids, i, j))
        for _, value in ipairs(values) do
            if value then
                reply[#reply + 1] = value
            end
        end
        i = j + 1
    end
    return reply
end

local function presence_stats(keys, args)
    local channel = keys[1]
    if not channel then
        error('wsrelay_presence_stats: 1 <channel>')
    end
    local members, zset = presence_keys(channel)
    prune(members, zset, now_ms())
    local users = {}
    local distinct = 0
    local values = redis.call('HVALS', members)
    for _, value in ipairs(values) do
        local ok, member = pcall(cjson.decode, value)
        if ok and type(member) == 'table' and type(member.user) == 'string' and not users[member.user] then
            users[member.user] = true
            distinct = distinct + 1
        end
    end
    return {#values, distinct}
end

redis.register_function('wsrelay_presence_join', presence_join)
redis.register_function('wsrelay_presence_leave', presence_leave)
redis.register_function('wsrelay_presence_get', presence_get)
redis.register_function('wsrelay_presence_stats', presence_stats)

-- Instance leases and the connection registry (docs/scaling.md "The fleet", "Leases"). The one
-- declared key is the fleet's base, <prefix>wsrelay:{fleet}; the keys below are derived from it
-- and share its hash tag, so they live in one Cluster slot:
--   <base>:leases            sorted set: member = instance id, score = lease deadline (Redis TIME, ms)
--   <base>:c:<instance>      hash: connection id -> its record (JSON), written by the instance
--   <base>:r:<instance>      the same hash once a lost instance was claimed (being reaped)
--   <base>:claims:<claimer>  set: the lost instances <claimer> is reaping
--
--   FCALL wsrelay_lease_renew 1 <base> <instance> <ttl_ms>
--     sets the lease's deadline to now + ttl_ms; returns 1 when the instance held a lease, 0 when
--     it did not (its first renewal, or it was reaped meanwhile)
--   FCALL wsrelay_lease_reap 1 <base> <claimer> <max>
--     claims at most <max> instances whose lease has expired (never <claimer> itself): removes the
--     lease, renames the instance's hash to its reaping key, and takes over the instances it was
--     reaping itself, and queues its channel holds for dropping (occupancy, below); returns {n,
--     lost_1..lost_n, claimed...}: the n instances reaped now, then every instance <claimer> is
--     reaping (those included)
--   FCALL wsrelay_lease_records 1 <base> <claimer> <lost> <max>
--     returns {owned, id_1, record_1, ...}: owned 0 when <claimer> no longer reaps <lost> (then
--     nothing else); otherwise up to <max> records still to report. None left: the claim is over
--     (its keys are removed)
--   FCALL wsrelay_lease_done 1 <base> <lost> <id>...
--     removes those records of a lost instance (reported); returns how many were removed
--   FCALL wsrelay_conn_put 1 <base> <instance> <id> <record> [<id> <record>...]
--     writes records; returns -1 without writing when the instance holds no lease, else the count
--   FCALL wsrelay_conn_del 1 <base> <instance> <id>...
--     removes records; returns how many were removed
--   FCALL wsrelay_lease_release 1 <base> <instance>
--     a drained instance: removes its records and its lease and queues any channel hold left for
--     dropping; when it was reaping others, its lease is left expired instead, so that another
--     instance takes those over. Returns 1

local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fleet_base(keys, name, usage)
    if not keys[1] then
        error('wsrelay_' .. name .. ': 1 ' .. usage)
    end
    return keys[1]
end

local function lease_renew(keys, args)
    local base = fleet_base(keys, 'lease_renew', '<base> <instance> <ttl_ms>')
    local ttl = count(args[2], 'ttl_ms')
    local leases = base .. ':leases'
    local held = redis.call('ZSCORE', leases, args[1])
    redis.call('ZADD', leases, now_ms() + ttl, args[1])
    if held then
        return 1
    end
    return 0
end

local function lease_reap(keys, args)
    local base = fleet_base(keys, 'lease_reap', '<base> <claimer> <max>')
    local claimer = args[1]
    local max = count(args[2], 'max')
    local leases = base .. ':leases'
    local mine = base .. ':claims:' .. claimer
    -- One more than asked, in case the claimer's own lease is among them.
    local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now_ms(), 'LIMIT', 0, max + 1)
    local reaped = {}
    for _, lost in ipairs(expired) do
        if lost ~= claimer and #reaped < max then
            redis.call('ZREM', leases, lost)
            reaped[#reaped + 1] = lost
            local conns = base .. ':c:' .. lost
            local reaping = base .. ':r:' .. lost
            if redis.call('EXISTS', conns) == 1 then
                if redis.call('EXISTS', reaping) == 0 then
                    redis.call('RENAME', conns, reaping)
                else
                    local all = redis.call('HGETALL', conns)
                    for i = 1, #all, 2 do
                        redis.call('HSET', reaping, all[i], all[i + 1])
                    end
                    redis.call('DEL', conns)
                end
            end
            if redis.call('EXISTS', reaping) == 1 then
                redis.call('SADD', mine, lost)
            end
            -- Its channel holds (occupancy, below) go at the next wsrelay_occupancy_due.
            if redis.call('EXISTS', base .. ':oi:' .. lost) == 1 then
                redis.call('SADD', base .. ':od', lost)
            end
            local theirs = base .. ':claims:' .. lost
            for _, other in ipairs(redis.call('SMEMBERS', theirs)) do
                redis.call('SADD', mine, other)
            end
            redis.call('DEL', theirs)
        end
    end
    local reply = {#reaped}
    for _, lost in ipairs(reaped) do
        reply[#reply + 1] = lost
    end
    for _, lost in ipairs(redis.call('SMEMBERS', mine)) do
        reply[#reply + 1] = lost
    end
    return reply
end

local function lease_records(keys, args)
    local base = fleet_base(keys, 'lease_records', '<base> <claimer> <lost> <max>')
    local mine = base .. ':claims:' .. args[1]
    local lost = args[2]
    local max = count(args[3], 'max')
    if redis.call('SISMEMBER', mine, lost) == 0 then
        return {0}
    end
    local reaping = base .. ':r:' .. lost
    local reply = {1}
    local cursor = '0'
    repeat
        local page = redis.call('HSCAN', reaping, cursor, 'COUNT', max)
        cursor = page[1]
        local fields = page[2]
        for i = 1, #fields, 2 do
            if (#reply - 1) / 2 < max then
                reply[#reply + 1] = fields[i]
                reply[#reply + 1] = fields[i + 1]
            end
        end
    until cursor == '0' or (#reply - 1) / 2 >= max
    if #reply == 1 then
        redis.call('SREM', mine, lost)
        redis.call('DEL', reaping)
    end
    return reply
end

local function lease_done(keys, args)
    local base = fleet_base(keys, 'lease_done', '<base> <lost> <id>...')
    if #args < 2 then
        return 0
    end
    return redis.call('HDEL', base .. ':r:' .. args[1], unpack(args, 2))
end

local function conn_put(keys, args)
    local base = fleet_base(keys, 'conn_put', '<base> <instance> <id> <record>...')
    if #args < 3 or #args % 2 ~= 1 then
        error('wsrelay_conn_put: 1 <base> <instance> <id> <record> [<id> <record>...]')
    end
    if not redis.call('ZSCORE', base .. ':leases', args[1]) then
        return -1
    end
    redis.call('HSET', base .. ':c:' .. args[1], unpack(args, 2))
    return (#args - 1) / 2
end

local function conn_del(keys, args)
    local base = fleet_base(keys, 'conn_del', '<base> <instance> <id>...')
    if #args < 2 then
        return 0
    end
    return redis.call('HDEL', base .. ':c:' .. args[1], unpack(args, 2))
end

local function lease_release(keys, args)
    local base = fleet_base(keys, 'lease_release', '<base> <instance>')
    local instance = args[1]
    redis.call('DEL', base .. ':c:' .. instance)
    if redis.call('EXISTS', base .. ':oi:' .. instance) == 1 then
        redis.call('SADD', base .. ':od', instance)
    end
    if redis.call('EXISTS', base .. ':claims:' .. instance) == 1 then
        redis.call('ZADD', base .. ':leases', 0, instance)
    else
        redis.call('ZREM', base .. ':leases', instance)
    end
    return 1
end

redis.register_function('wsrelay_lease_renew', lease_renew)
redis.register_function('wsrelay_lease_reap', lease_reap)
redis.register_function('wsrelay_lease_records', lease_records)
redis.register_function('wsrelay_lease_done', lease_done)
redis.register_function('wsrelay_conn_put', conn_put)
redis.register_function('wsrelay_conn_del', conn_del)
redis.register_function('wsrelay_lease_release', lease_release)

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

-- Channel occupancy (docs/scaling.md "Channel occupancy"): which channels have a subscriber
-- anywhere in the fleet, for the hook's occupied and vacated events. The key is the fleet's key
-- (wsrelay:{fleet}, prefixed) and every key below shares its slot, so that one call sees a
-- channel's holders, the pending vacates and the instances to drop at once. A holder is a
-- worker address (<instance>.<worker>):
--   <base>:o:<channel>   hash: holder -> 1, while that worker has the channel open
--   <base>:oh:<holder>   set: the channels the holder holds
--   <base>:oi:<instance> set: the instance's holders
--   <base>:os            hash: channel -> 1 while the channel is reported occupied
--   <base>:ov            sorted set: pending vacates, channel -> deadline (ms of the server's clock)
--   <base>:od            set: lost or released instances whose holds are still to drop
--   <base>:oseq          the last event's seq: each event's is the larger of the last one + 1 and
--                        the server's clock in µs, so it keeps growing when Redis lost the counter
--
--   FCALL wsrelay_occupancy_update 1 <base> <holder> <delay_ms> <op>...
--     each <op> is +<channel> (the holder opened it), -<channel> (closed it) or * (every hold
--     of the holder released: a relay setting its holds again after an outage), applied in
--     order; returns {pending, c1, seq1, ...}: how many channels this call left empty (each
--     pending, vacated <delay_ms> from now unless held again), then an occupied event per channel
--     that got its first holder while not reported occupied. A channel held again while pending
--     is neither.
--   FCALL wsrelay_occupancy_due 1 <base> <delay_ms> <max>
--     drops at most <max> holds of instances in <base>:od (their channels left empty become
--     pending), then takes at most <max> pending vacates whose deadline has passed; returns
--     {more, c1, seq1, ...}: a vacated event per channel still empty, and more = 1 when work was
--     left for another call.

local function occupancy_seq(base)
    local t = redis.call('TIME')
    local seq = math.max(tonumber(redis.call('GET', base .. ':oseq') or 0) + 1,
        tonumber(t[1]) * 1000000 + tonumber(t[2]))
    redis.call('SET', base .. ':oseq', string.format('%d', seq))
    return seq
end

local function occupancy_hold(base, holder, channel)
    -- the worker address's instance part
    local instance = string.match(holder, '^([^.]+)%.')
    if not instance then
        error('wsrelay_occupancy_update: holder must be <instance>.<worker>, got ' .. holder)
    end
    if redis.call('HSET', base .. ':o:' .. channel, holder, 1) == 0 then
        return nil
    end
    redis.call('SADD', base .. ':oh:' .. holder, channel)
    redis.call('SADD', base .. ':oi:' .. instance, holder)
    if redis.call('HLEN', base .. ':o:' .. channel) ~= 1 then
        return nil
    end
    if redis.call('ZREM', base .. ':ov', channel) == 1 then
        return nil  -- emptied and held again within the delay: no event
    end
    if redis.call('HSETNX', base .. ':os', channel, 1) == 0 then
        return nil
    end
    return occupancy_seq(base)
end

-- Removes one hold; true when it left the channel empty and the channel is now pending.
local function occupancy_release(base, holder, channel, now, delay)
    if redis.call('HDEL', base .. ':o:' .. channel, holder) == 0 then
        return false
    end
    if redis.call('SREM', base .. ':oh:' .. holder, channel) == 1 and
        redis.call('EXISTS', base .. ':oh:' .. holder) == 0 then
        redis.call('SREM', base .. ':oi:' .. string.match(holder, '^([^.]+)'), holder)
    end
    if redis.call('EXISTS', base .. ':o:' .. channel) == 1 then
        return false
    end
    if redis.call('HEXISTS', base .. ':os', channel) == 0 then
        return false
    end
    redis.call('ZADD', base .. ':ov', now + delay, channel)
    return true
end

local function occupancy_update(keys, args)
    local base, holder = keys[1], args[1]
    if not base or not holder or #args < 2 then
        error('wsrelay_occupancy_update: 1 <base> <holder> <delay_ms> <+channel|-channel>...')
    end
    local delay = count(args[2], 'delay_ms')
    local now = now_ms()
    local reply = {0}
    for i = 3, #args do
        local op, channel = string.sub(args[i], 1, 1), string.sub(args[i], 2)
        if op == '+' then
            local seq = occupancy_hold(base, holder, channel)
            if seq then
                reply[#reply + 1] = channel
                reply[#reply + 1] = seq
            end
        elseif op == '-' then
            if occupancy_release(base, holder, channel, now, delay) then
                reply[1] = reply[1] + 1
            end
        elseif args[i] == '*' then
            for _, held in ipairs(redis.call('SMEMBERS', base .. ':oh:' .. holder)) do
                if occupancy_release(base, holder, held, now, delay) then
                    reply[1] = reply[1] + 1
                end
            end
        else
            error('wsrelay_occupancy_update: an op is +<channel>, -<channel> or *, got ' .. args[i])
        end
    end
    return reply
end

local function occupancy_due(keys, args)
    local base = keys[1]
    if not base or #args < 2 then
        error('wsrelay_occupancy_due: 1 <base> <delay_ms> <max>')
    end
    local delay = count(args[1], 'delay_ms')
    local max = count(args[2], 'max')
    local now = now_ms()
    local budget = max
    local more = 0
    -- Lost and released instances: their holds go, a bounded number per call.
    while budget > 0 do
        local instance = redis.call('SRANDMEMBER', base .. ':od')
        if not instance then
            break
        end
        local holders = base .. ':oi:' .. instance
        local holder = redis.call('SRANDMEMBER', holders)
        if not holder then
            redis.call('SREM', base .. ':od', instance)
        else
            local held = base .. ':oh:' .. holder
            local channels = redis.call('SRANDMEMBER', held, budget)
            budget = budget - #channels
            for _, channel in ipairs(channels) do
                occupancy_release(base, holder, channel, now, delay)
            end
            if redis.call('EXISTS', held) == 0 then
                redis.call('SREM', holders, holder)
            end
        end
    end
    if budget == 0 and redis.call('EXISTS', base .. ':od') == 1 then
        more = 1
    end
    local reply = {more}
    local due = redis.call('ZRANGEBYSCORE', base .. ':ov', '-inf', now, 'LIMIT', 0, max)
    for _, channel in ipairs(due) do
        redis.call('ZREM', base .. ':ov', channel)
        if redis.call('EXISTS', base .. ':o:' .. channel) == 0 and
            redis.call('HDEL', base .. ':os', channel) == 1 then
            reply[#reply + 1] = channel
            reply[#reply + 1] = occupancy_seq(base)
        end
    end
    if #due == max and max > 0 then
        reply[1] = 1
    end
    return reply
end

redis.register_function('wsrelay_occupancy_update', occupancy_update)
redis.register_function('wsrelay_occupancy_due', occupancy_due)
