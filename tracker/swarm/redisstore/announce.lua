-- One announce, one round trip: register, refresh, move or remove the peer, count a
-- completion once, prune expired peers (bounded), and hand back the counts and random peers.
--
-- KEYS: 1 meta hash {ih}:m (s, l, d, n4, n6), 2 peers hash {ih}:p (family..peer_id -> record),
-- 3 last-seen zset {ih}:z, 4..7 visible sets {ih}:s4 {ih}:l4 {ih}:s6 {ih}:l6
-- (member addr..peer_id), 8 totals hash, 9 per-IP hash, 10 torrent index set, 11 dead set.
-- A record is flags (1 byte: 1 seeder, 2 hidden, 4 counted, 8 keyed) .. key hash (8 bytes)
-- .. compact address (6 or 18 bytes).
--
-- ARGV: 1 op ("a" announce, "r" reveal, "x" expire, "R" restore), 2 prefix, 3 info-hash hex,
-- 4 now (Unix s), 5 timeout (s), 6 max torrents, 7 max peers, 8 max total, 9 max per IP,
-- 10 keep dead ("1"), then per op (see below).
--
-- Returns {code, seeders, leechers, downloaded, hidden, peer...}; code 0 is success, others
-- name the refusal (see codes in store.go).

local KM, KP, KZ = KEYS[1], KEYS[2], KEYS[3]
local KG, KIP, KIDX, KDEAD = KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local op, prefix, ih = ARGV[1], ARGV[2], ARGV[3]
local now, timeout = tonumber(ARGV[4]), tonumber(ARGV[5])
local maxT, maxP, maxTotal, maxIP = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local keepDead = ARGV[10] == "1"

local SEED, HIDDEN, COUNTED, KEYED = 1, 2, 4, 8

-- On a Redis Cluster only the swarm's seven keys are passed (one slot): the totals, per-IP
-- counts and dead set are not kept, and the caller updates the torrent index itself, told by
-- indexed (1: this torrent was created, -1: dropped).
local indexed = 0

local function gadd(f, d)
  if KG then redis.call("HINCRBY", KG, f, d) end
end

local function has(f, bit) return f % (bit + bit) >= bit end
local function setbit(f, bit, on)
  if has(f, bit) then f = f - bit end
  if on then f = f + bit end
  return f
end

local function visibleKey(fam, seeder)
  if fam == "4" then
    if seeder then return KEYS[4] end
    return KEYS[5]
  end
  if seeder then return KEYS[6] end
  return KEYS[7]
end

local function ipOf(addr)
  if #addr == 6 then return addr:sub(1, 4) end
  return addr:sub(1, 8) -- an IPv6 /64
end

local function ipAdd(addr, d)
  if not KIP then return end
  local n = redis.call("HINCRBY", KIP, ipOf(addr), d)
  if n <= 0 then redis.call("HDEL", KIP, ipOf(addr)) end
end

local function famTotal(fam) if fam == "4" then return "p4" end return "p6" end

-- removePeer drops a stored peer and uncounts it everywhere.
local function removePeer(field, rec)
  local f = rec:byte(1)
  local addr = rec:sub(10)
  local fam = field:sub(1, 1)
  local seeder = has(f, SEED)
  if not has(f, HIDDEN) then
    redis.call("SREM", visibleKey(fam, seeder), addr .. field:sub(2))
  end
  redis.call("HDEL", KP, field)
  redis.call("ZREM", KZ, field)
  local sl = seeder and "s" or "l"
  redis.call("HINCRBY", KM, sl, -1)
  redis.call("HINCRBY", KM, "n" .. fam, -1)
  gadd(sl, -1)
  gadd(famTotal(fam), -1)
  gadd("n", -1)
  ipAdd(addr, -1)
end

local function swarmKeys(h)
  local b = prefix .. "{" .. h .. "}:"
  return b .. "m", b .. "p", b .. "z", b .. "s4", b .. "l4", b .. "s6", b .. "l6"
end

-- dropTorrent deletes an empty torrent (h: its hex info-hash).
local function dropTorrent(h)
  local m = swarmKeys(h)
  local d = tonumber(redis.call("HGET", m, "d") or "0")
  redis.call("DEL", swarmKeys(h))
  if KIDX then
    redis.call("SREM", prefix .. "idx:" .. h:sub(1, 1), h) -- the index shard (see Store.indexKey)
    redis.call("SREM", KDEAD, h)
  else
    indexed = -1
  end
  gadd("t", -1)
  if d > 0 then gadd("d", -d) end -- (-0 is not an integer to Redis)
end

-- settle drops this torrent when it has no peers and no completions, or files it as dead
-- (completions only) so that a full store can make room for a new torrent.
local function settle()
  if redis.call("EXISTS", KM) == 0 then return end
  local v = redis.call("HMGET", KM, "n4", "n6", "d")
  if tonumber(v[1] or "0") + tonumber(v[2] or "0") > 0 then return end
  if keepDead then return end
  if tonumber(v[3] or "0") == 0 then
    dropTorrent(ih)
  else
    if KDEAD then redis.call("SADD", KDEAD, ih) end
  end
end

-- prune removes up to limit peers not seen within the timeout.
local function prune(limit)
  local old = redis.call("ZRANGEBYSCORE", KZ, "-inf", "(" .. (now - timeout), "LIMIT", 0, limit)
  for _, field in ipairs(old) do
    local rec = redis.call("HGET", KP, field)
    if rec then removePeer(field, rec) else redis.call("ZREM", KZ, field) end
  end
  return #old
end

local function counts()
  local v = redis.call("HMGET", KM, "s", "l", "d")
  return tonumber(v[1] or "0"), tonumber(v[2] or "0"), tonumber(v[3] or "0")
end

local function newTorrent()
  redis.call("HSET", KM, "s", 0, "l", 0, "d", 0, "n4", 0, "n6", 0)
  if KIDX then redis.call("SADD", KIDX, ih) else indexed = 1 end
  gadd("t", 1)
end

-- room reports whether a new torrent fits, evicting a dead one if that makes room.
local function room()
  if maxT <= 0 then return true end
  if tonumber(redis.call("HGET", KG, "t") or "0") < maxT then return true end
  if keepDead or not KDEAD then return false end
  local victim = redis.call("SPOP", KDEAD)
  if not victim then return false end
  redis.call("SADD", KDEAD, victim) -- dropTorrent removes it again
  dropTorrent(victim)
  return true
end

-- insert stores a new peer (admitted by the caller).
local function insert(field, flags, key, addr, seen)
  redis.call("HSET", KP, field, string.char(flags) .. key .. addr)
  redis.call("ZADD", KZ, seen, field)
  local fam = field:sub(1, 1)
  local seeder = has(flags, SEED)
  if not has(flags, HIDDEN) then
    redis.call("SADD", visibleKey(fam, seeder), addr .. field:sub(2))
  end
  local sl = seeder and "s" or "l"
  redis.call("HINCRBY", KM, sl, 1)
  redis.call("HINCRBY", KM, "n" .. fam, 1)
  gadd(sl, 1)
  gadd(famTotal(fam), 1)
  gadd("n", 1)
  ipAdd(addr, 1)
  if KDEAD and tonumber(redis.call("HGET", KM, "n4")) + tonumber(redis.call("HGET", KM, "n6")) == 1 then
    redis.call("SREM", KDEAD, ih) -- its first peer: no longer dead
  end
end

local function admit(addr)
  if maxTotal > 0 and tonumber(redis.call("HGET", KG, "n") or "0") >= maxTotal then return 3 end
  if maxIP > 0 and tonumber(redis.call("HGET", KIP, ipOf(addr)) or "0") >= maxIP then return 4 end
  return 0
end

-- pick appends up to want random members of the given sets to out, never self.
local function pick(out, want, sets, self)
  if want <= 0 then return 0 end
  local sizes, total = {}, 0
  for i, k in ipairs(sets) do
    sizes[i] = redis.call("SCARD", k)
    total = total + sizes[i]
  end
  local got = 0
  for i, k in ipairs(sets) do
    local share
    if total <= want + 1 then
      share = sizes[i]
    else
      -- Proportional share, the last set taking what is left.
      share = math.floor(want * sizes[i] / total + 0.5)
      if i == #sets then share = want - got end
      share = math.min(share, sizes[i])
    end
    if share > 0 then
      local m = redis.call("SRANDMEMBER", k, share + 1)
      for _, p in ipairs(m) do
        if got >= want then break end
        if p ~= self then
          out[#out + 1] = p
          got = got + 1
        end
      end
    end
  end
  return got
end

local function result(code, hidden, peers)
  local s, l, d = counts()
  local r = { code, s, l, d, hidden and 1 or 0, indexed }
  if peers then
    for _, p in ipairs(peers) do r[#r + 1] = p end
  end
  return r
end

if op == "x" then
  -- ARGV 11: how many peers at most to prune.
  local n = prune(tonumber(ARGV[11]))
  settle()
  return { n, indexed }
end

if op == "r" then
  -- ARGV 11 field, 12 address.
  local field, addr = ARGV[11], ARGV[12]
  local rec = redis.call("HGET", KP, field)
  if rec and rec:sub(10) == addr and has(rec:byte(1), HIDDEN) then
    local f = setbit(rec:byte(1), HIDDEN, false)
    redis.call("HSET", KP, field, string.char(f) .. rec:sub(2))
    redis.call("SADD", visibleKey(field:sub(1, 1), has(f, SEED)), addr .. field:sub(2))
  end
  return { 0 }
end

if op == "c" then
  -- One completed download counted without a peer (a browser's, kept by the WebSocket
  -- tracker): the torrent is created if it fits, like a restored one.
  if redis.call("EXISTS", KM) == 0 then
    if not room() then return { 1, 0 } end
    newTorrent()
  end
  redis.call("HINCRBY", KM, "d", 1)
  gadd("d", 1)
  settle()
  return { 0, indexed }
end

if op == "R" then
  -- ARGV 11 downloaded, then (field, flags, address, last seen) per peer.
  if redis.call("EXISTS", KM) == 0 then
    if not room() then return { 1, 0 } end
    newTorrent()
  end
  local d = tonumber(ARGV[11])
  local cur = tonumber(redis.call("HGET", KM, "d") or "0")
  if d > cur then
    redis.call("HSET", KM, "d", d)
    gadd("d", d - cur)
  end
  local nokey = string.rep("\0", 8)
  for i = 12, #ARGV, 4 do
    local field, flags, addr, seen = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], tonumber(ARGV[i + 3])
    local fam = field:sub(1, 1)
    if now - seen <= timeout and redis.call("HEXISTS", KP, field) == 0
        and tonumber(redis.call("HGET", KM, "n" .. fam) or "0") < maxP
        and (maxTotal <= 0 or tonumber(redis.call("HGET", KG, "n") or "0") < maxTotal) then
      insert(field, setbit(flags, KEYED, false), nokey, addr, math.min(seen, now))
    end
  end
  settle()
  return { 0, indexed }
end

-- op "a": ARGV 11 field, 12 address, 13 key hash ("" for none), 14 seeder ("1"),
-- 15 event (0 none, 1 started, 2 completed, 3 stopped), 16 numwant, 17 hidden ("1").
local field, addr, key = ARGV[11], ARGV[12], ARGV[13]
local seeder, event, want, hideNew = ARGV[14] == "1", tonumber(ARGV[15]), tonumber(ARGV[16]), ARGV[17] == "1"
local STOPPED, COMPLETED = 3, 2
local fam = field:sub(1, 1)
local id = field:sub(2)

prune(16) -- nothing to do (and cheap) for a swarm that does not exist
local rec = redis.call("HGET", KP, field)
local hidden

if not rec then
  if event == STOPPED then
    settle()
    return result(0, false)
  end
  if redis.call("EXISTS", KM) == 0 then
    if not room() then return { 1, 0, 0, 0, 0, 0 } end
    local c = admit(addr)
    if c ~= 0 then return { c, 0, 0, 0, 0, 0 } end
    newTorrent()
  else
    if tonumber(redis.call("HGET", KM, "n" .. fam) or "0") >= maxP then return result(2, false) end
    local c = admit(addr)
    if c ~= 0 then return result(c, false) end
  end
  local flags = 0
  if seeder then flags = flags + SEED end
  if hideNew then flags = flags + HIDDEN end
  if event == COMPLETED then
    -- A peer whose first announce says completed finished while we did not know it.
    flags = flags + COUNTED
    redis.call("HINCRBY", KM, "d", 1)
    gadd("d", 1)
  end
  if key ~= "" then flags = flags + KEYED else key = string.rep("\0", 8) end
  insert(field, flags, key, addr, now)
  hidden = hideNew
else
  local f = rec:byte(1)
  local oldAddr = rec:sub(10)
  if oldAddr ~= addr then
    -- Acting on a peer registered elsewhere: a keyed peer only with its key, a keyless one
    -- only from its own IP address.
    if has(f, KEYED) then
      if key == "" or key ~= rec:sub(2, 9) then return result(5, false) end
    elseif oldAddr:sub(1, #oldAddr - 2) ~= addr:sub(1, #addr - 2) then
      return result(6, false)
    end
  end
  if event == STOPPED then
    removePeer(field, rec)
    settle()
    return result(0, false)
  end
  local wasSeeder = has(f, SEED)
  hidden = has(f, HIDDEN)
  if not hidden and (oldAddr ~= addr or wasSeeder ~= seeder) then
    redis.call("SREM", visibleKey(fam, wasSeeder), oldAddr .. id)
    redis.call("SADD", visibleKey(fam, seeder), addr .. id)
  end
  if oldAddr ~= addr and ipOf(oldAddr) ~= ipOf(addr) then
    ipAdd(oldAddr, -1) -- a move adds no peer: counted under its new IP whatever the limit
    ipAdd(addr, 1)
  end
  if seeder ~= wasSeeder then
    local from, to = "l", "s"
    if wasSeeder then from, to = "s", "l" end
    redis.call("HINCRBY", KM, from, -1)
    redis.call("HINCRBY", KM, to, 1)
    gadd(from, -1)
    gadd(to, 1)
  end
  if (event == COMPLETED or (seeder and not wasSeeder)) and not has(f, COUNTED) then
    f = f + COUNTED
    redis.call("HINCRBY", KM, "d", 1)
    gadd("d", 1)
  end
  f = setbit(f, SEED, seeder)
  f = setbit(f, KEYED, key ~= "")
  if key == "" then key = string.rep("\0", 8) end
  redis.call("HSET", KP, field, string.char(f) .. key .. addr)
  redis.call("ZADD", KZ, now, field)
end

-- One read of the swarm's figures serves the reply and tells whether the other family has
-- peers at all (each call from the script costs more than the command itself).
local v = redis.call("HMGET", KM, "s", "l", "d", "n4", "n6")
local peers = {}
if want > 0 then
  local own, other = "4", "6"
  local otherN = tonumber(v[5] or "0")
  if fam == "6" then own, other, otherN = "6", "4", tonumber(v[4] or "0") end
  local function sets(fm)
    if seeder then return { visibleKey(fm, false) } end
    return { visibleKey(fm, true), visibleKey(fm, false) }
  end
  local got = pick(peers, want, sets(own), addr .. id)
  if otherN > 0 then pick(peers, want - got, sets(other), "") end
end
local r = { 0, tonumber(v[1] or "0"), tonumber(v[2] or "0"), tonumber(v[3] or "0"), hidden and 1 or 0, indexed }
for _, p in ipairs(peers) do r[#r + 1] = p end
return r
