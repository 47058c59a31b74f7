-- One announce, one round trip: register, refresh, move or remove the peer, count a
-- completion once, prune expired peers (bounded), and hand back the counts and random peers.
--
-- KEYS: 1 meta hash {ih}:m (s4 l4 s6 l6: peers by family and state, d: completions,
-- x: when the swarm is next pruned on access, pi pb pc: where that pruning goes on,
-- n4s n4l n6s n6l: how many buckets each peer hash has, absent for one), 2..5 the first
-- buckets of the peer hashes {ih}:4s {ih}:4l {ih}:6s {ih}:6l (seeders and leechers by
-- family; field: peer ID, value: record), 6 totals hash, 7 per-IP hash (used only with a
-- per-IP limit), 8 torrent index set, 9 dead set.
--
-- Buckets: a peer hash is split into buckets by linear hashing on the SHA-1 of the peer ID
-- (bucket 0 is the key in KEYS, bucket b > 0 is that key .. ":" .. b), split one at a time
-- when the hash holds more than SPLIT peers a bucket and merged back below MERGE, so that
-- every bucket stays under Redis's hash-max-listpack-entries (128 by default) and stays a
-- listpack at any swarm size. A peer is always in the bucket its ID names: one HGET finds it.
-- A record is the compact address (6 or 18 bytes) .. last seen (4 bytes, big-endian Unix
-- seconds) .. flags (1 byte: 2 hidden, 4 counted, 8 keyed) [.. key hash (8 bytes) if keyed].
--
-- ARGV: 1 op ("a" announce, "r" reveal, "x" expire, "R" restore, "c" completion, "w" read
-- the swarm), 2 prefix,
-- 3 info-hash hex, 4 now (Unix s), 5 timeout (s), 6 max torrents, 7 max peers, 8 max total,
-- 9 max per IP, 10 keep dead ("1"), then per op (see below).
--
-- An announce returns {code, seeders, leechers, downloaded, hidden, indexed, IPv4 records,
-- IPv6 records, IPv4 peer IDs, IPv6 peer IDs}: the handed-out peers' records concatenated
-- per family, and their peer IDs (20 bytes each, in the same order) only if asked for. Code
-- 0 is success, others name the refusal (see codes in store.go).

local KM = KEYS[1]
local KG, KIP, KIDX, KDEAD = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local op, prefix, ih = ARGV[1], ARGV[2], ARGV[3]
local now, timeout = tonumber(ARGV[4]), tonumber(ARGV[5])
local maxT, maxP, maxTotal, maxIP = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local keepDead = ARGV[10] == "1"
local oldest = now - timeout -- a peer last seen before this has expired

local HIDDEN, COUNTED, KEYED = 2, 4, 8
local SPLIT, MERGE = 48, 16 -- peers a bucket, on average, above which a hash splits / below which it merges

-- On a Redis Cluster only the swarm's five keys are passed (one slot): the totals, per-IP
-- counts and dead set are not kept, and the caller updates the torrent index itself, told by
-- indexed (1: this torrent was created, -1: dropped).
local indexed = 0

local function has(f, bit) return f % (bit + bit) >= bit end

-- The counter and bucket-count fields of peer hash i (2..5).
local CN = { "", "s4", "l4", "s6", "l6" }
local NB = { "", "n4s", "n4l", "n6s", "n6l" }

-- The swarm's figures, read once and written back once (by save) if they changed: each call
-- from the script into Redis costs more than the arithmetic.
local meta = redis.call("HMGET", KM, "s4", "l4", "s6", "l6", "d", "x", "n4s", "n4l", "n6s", "n6l", "pi", "pb", "pc")
local exists = meta[5] ~= false
local cnt = { s4 = tonumber(meta[1] or "0"), l4 = tonumber(meta[2] or "0"),
  s6 = tonumber(meta[3] or "0"), l6 = tonumber(meta[4] or "0"), d = tonumber(meta[5] or "0") }
local pruneAt = tonumber(meta[6] or "0")
local nb = { 0, tonumber(meta[7] or "1"), tonumber(meta[8] or "1"), tonumber(meta[9] or "1"), tonumber(meta[10] or "1") }
local nbMoved = false
local pos = { tonumber(meta[11] or "2"), tonumber(meta[12] or "0"), meta[13] or "0" }
local posMoved = false
local dirty = false

local function save()
  if not exists or not (dirty or nbMoved or posMoved) then return end
  local a = { "s4", cnt.s4, "l4", cnt.l4, "s6", cnt.s6, "l6", cnt.l6, "d", cnt.d, "x", pruneAt }
  if nbMoved then
    for i = 2, 5 do
      a[#a + 1] = NB[i]
      a[#a + 1] = nb[i]
    end
  end
  if posMoved then
    a[#a + 1], a[#a + 2], a[#a + 3], a[#a + 4], a[#a + 5], a[#a + 6] = "pi", pos[1], "pb", pos[2], "pc", pos[3]
  end
  redis.call("HSET", KM, unpack(a))
  dirty, nbMoved, posMoved = false, false, false
end

local function gadd(f, d)
  if KG then redis.call("HINCRBY", KG, f, d) end
end

-- The peer hash (its KEYS index) and the counter name of a family ("4"/"6") and state.
local function slot(fam, seeder)
  local i = 2
  if fam == "6" then i = 4 end
  if not seeder then i = i + 1 end
  return i, CN[i]
end

local function alen(fam) if fam == "6" then return 18 end return 6 end

-- Buckets. idHash is where a peer ID's bucket comes from; bucketOf is its bucket in hash i
-- (linear hashing: buckets below nb - m have been split with the next power of two).
-- (SHA-1 is computed only for a hash of several buckets, once an ID.)
local hashes = {}
local function idHash(id)
  local h = hashes[id]
  if not h then
    h = tonumber(redis.sha1hex(id):sub(1, 8), 16)
    hashes[id] = h
  end
  return h
end

local function pow2(n)
  local m = 1
  while m + m <= n do m = m + m end
  return m
end

local function bucketOf(i, id)
  local n = nb[i]
  if n == 1 then return 0 end
  local m = pow2(n)
  local b = idHash(id) % (m + m)
  if b >= n then b = b - m end
  return b
end

local function bkey(i, b)
  if b == 0 then return KEYS[i] end
  return KEYS[i] .. ":" .. b
end

-- call runs cmd on key with the values in list, a thousand at a time (Lua's stack bounds
-- unpack).
local function call(cmd, key, list)
  for j = 1, #list, 1000 do
    redis.call(cmd, key, unpack(list, j, math.min(j + 999, #list)))
  end
end

-- split adds bucket nb to hash i, moving into it the peers of its buddy that belong there.
local function split(i)
  local n = nb[i]
  local from = bkey(i, n - pow2(n))
  local kv = redis.call("HGETALL", from)
  nb[i] = n + 1
  nbMoved = true
  local gone, moved = {}, {}
  for j = 1, #kv, 2 do
    if bucketOf(i, kv[j]) == n then
      gone[#gone + 1] = kv[j]
      moved[#moved + 1] = kv[j]
      moved[#moved + 1] = kv[j + 1]
    end
  end
  if #gone > 0 then
    call("HDEL", from, gone)
    call("HSET", bkey(i, n), moved)
  end
end

-- merge folds the last bucket of hash i back into its buddy.
local function merge(i)
  local q = nb[i] - 1
  local kv = redis.call("HGETALL", bkey(i, q))
  if #kv > 0 then
    call("HSET", bkey(i, q - pow2(q)), kv)
    redis.call("DEL", bkey(i, q))
  end
  nb[i] = q
  nbMoved = true
end

-- balance splits or merges one bucket of hash i if its peers a bucket left the bounds.
local function balance(i)
  local c = cnt[CN[i]]
  if c == 0 and nb[i] > 1 then
    nb[i], nbMoved = 1, true -- every bucket is empty, so gone
  elseif c > SPLIT * nb[i] then
    split(i)
  elseif nb[i] > 1 and c < MERGE * nb[i] then
    merge(i)
  end
end

local function ipOf(addr)
  if #addr == 6 then return addr:sub(1, 4) end
  return addr:sub(1, 8) -- an IPv6 /64
end

local function ipAdd(addr, d)
  if not KIP or maxIP <= 0 then return end
  local n = redis.call("HINCRBY", KIP, ipOf(addr), d)
  if n <= 0 then redis.call("HDEL", KIP, ipOf(addr)) end
end

local function seenOf(rec, n)
  local a, b, c, d = rec:byte(n + 1, n + 4)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

local function record(addr, seen, flags, key)
  local r = addr .. string.char(math.floor(seen / 16777216) % 256, math.floor(seen / 65536) % 256,
    math.floor(seen / 256) % 256, seen % 256, flags)
  if has(flags, KEYED) then r = r .. key end
  return r
end

local function famTotal(fam) if fam == "4" then return "p4" end return "p6" end

-- count adds d to the peers of a family and state, in the swarm and the totals.
local function count(fam, seeder, d)
  local _, c = slot(fam, seeder)
  cnt[c] = cnt[c] + d
  dirty = true
  gadd(seeder and "s" or "l", d)
  gadd(famTotal(fam), d)
  gadd("n", d)
end

-- removePeer drops a stored peer (hash index i, bucket key k, peer ID id) and uncounts it
-- everywhere.
local function removePeer(i, k, id, rec)
  local fam = i <= 3 and "4" or "6"
  redis.call("HDEL", k, id)
  count(fam, i % 2 == 0, -1)
  ipAdd(rec:sub(1, alen(fam)), -1)
end

local function swarmKeys(h)
  local b = prefix .. "{" .. h .. "}:"
  return b .. "m", b .. "4s", b .. "4l", b .. "6s", b .. "6l"
end

-- dropTorrent deletes an empty torrent (h: its hex info-hash) and returns its completions.
-- (An empty torrent has no bucket left: Redis deletes an emptied hash.)
local function dropTorrent(h, d)
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
  if not exists then return end
  if cnt.s4 + cnt.l4 + cnt.s6 + cnt.l6 > 0 or keepDead then return end
  if cnt.d == 0 then
    dropTorrent(ih, 0)
    exists, dirty = false, false
  elseif KDEAD then
    redis.call("SADD", KDEAD, ih)
  end
end

-- scan examines peers of bucket b of hash i from cursor, removing the expired ones, until
-- about limit were looked at; it returns the next cursor ("0": the bucket is done) and how
-- many it saw. (A bucket is a listpack: one HSCAN returns it whole.)
local function scan(i, b, cursor, limit)
  local fam = i <= 3 and "4" or "6"
  local n = alen(fam)
  local k = bkey(i, b)
  local r = redis.call("HSCAN", k, cursor, "COUNT", limit)
  local kv = r[2]
  for j = 1, #kv, 2 do
    if seenOf(kv[j + 1], n) < oldest then removePeer(i, k, kv[j], kv[j + 1]) end
  end
  return r[1], #kv / 2
end

-- walk goes on examining the swarm's peers from hash i (2..5), bucket b, cursor c, until
-- about limit were looked at or the last hash is done; it returns where to go on (i 6: done).
local function walk(i, b, c, limit)
  while exists and i <= 5 and limit > 0 do
    if b >= nb[i] then
      i, b, c = i + 1, 0, "0"
    else
      local seen
      c, seen = scan(i, b, c, limit)
      limit = limit - seen
      if c == "0" then b = b + 1 end
    end
  end
  return i, b, c
end

-- prune goes on with this swarm's pruning pass (its place kept in the meta hash), examining
-- about limit peers; a finished pass is not repeated before a sixteenth of the timeout has
-- passed.
local function prune(limit)
  if not exists or now < pruneAt then return end
  local i, b, c = walk(pos[1], pos[2], pos[3], limit)
  if i > 5 then
    i, b, c = 2, 0, "0"
    pruneAt = now + math.max(1, math.floor(timeout / 16))
    dirty = true
  end
  pos = { i, b, c }
  posMoved = true
end

local function newTorrent()
  exists, dirty = true, true
  cnt = { s4 = 0, l4 = 0, s6 = 0, l6 = 0, d = 0 }
  nb = { 0, 1, 1, 1, 1 }
  pruneAt = now + math.max(1, math.floor(timeout / 16))
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
  local km = swarmKeys(victim)
  dropTorrent(victim, tonumber(redis.call("HGET", km, "d") or "0"))
  return true
end

local function peers() return cnt.s4 + cnt.l4 + cnt.s6 + cnt.l6 end

-- insert stores a new peer (admitted by the caller) and keeps its hash's buckets in bounds.
local function insert(id, fam, seeder, flags, key, addr, seen)
  local i = slot(fam, seeder)
  redis.call("HSET", bkey(i, bucketOf(i, id)), id, record(addr, seen, flags, key))
  count(fam, seeder, 1)
  ipAdd(addr, 1)
  if KDEAD and peers() == 1 then
    redis.call("SREM", KDEAD, ih) -- its first peer: no longer dead
  end
  balance(i)
end

local function admit(addr)
  if maxTotal > 0 and tonumber(redis.call("HGET", KG, "n") or "0") >= maxTotal then return 3 end
  if maxIP > 0 and tonumber(redis.call("HGET", KIP, ipOf(addr)) or "0") >= maxIP then return 4 end
  return 0
end

-- find returns the hash index, bucket key and record of a peer (family fam, peer ID id),
-- looking first where a peer in state seeder would be.
local function find(fam, id, seeder)
  local i = slot(fam, seeder)
  local k = bkey(i, bucketOf(i, id))
  local rec = redis.call("HGET", k, id)
  if rec then return i, k, rec end
  i = slot(fam, not seeder)
  k = bkey(i, bucketOf(i, id))
  rec = redis.call("HGET", k, id)
  if rec then return i, k, rec end
  return nil, nil, nil
end

local function result(code, hidden)
  save()
  return { code, cnt.s4 + cnt.s6, cnt.l4 + cnt.l6, cnt.d, hidden and 1 or 0, indexed }
end

if op == "w" then
  -- Returns {completions, then for each peer hash (2..5) the fields and values of all its
  -- buckets in one list}, or {} if the torrent does not exist: a swarm read whole, at once.
  if not exists then return {} end
  local r = { cnt.d }
  for i = 2, 5 do
    local all = {}
    for b = 0, nb[i] - 1 do
      local kv = redis.call("HGETALL", bkey(i, b))
      for j = 1, #kv do all[#all + 1] = kv[j] end
    end
    r[#r + 1] = all
  end
  return r
end

if op == "x" then
  -- ARGV 11: how many peers at most to examine, 12 hash index (2..5), 13 bucket, 14 its
  -- cursor. Returns {next hash index (0: done), next bucket, next cursor, indexed}. Buckets
  -- are merged only once a pass is done, so that none escapes it.
  local i, b, c = walk(tonumber(ARGV[12]), tonumber(ARGV[13]), ARGV[14], tonumber(ARGV[11]))
  if i > 5 and exists then
    for j = 2, 5 do balance(j) end
  end
  save()
  settle()
  if not exists or i > 5 then i = 0 end
  return { i, b, c, indexed }
end

if op == "r" then
  -- ARGV 11 field (family .. peer ID), 12 address.
  local fam, id, addr = ARGV[11]:sub(1, 1), ARGV[11]:sub(2), ARGV[12]
  local _, k, rec = find(fam, id, false)
  local n = alen(fam)
  if rec and rec:sub(1, n) == addr and has(rec:byte(n + 5), HIDDEN) then
    local f = rec:byte(n + 5) - HIDDEN
    redis.call("HSET", k, id, rec:sub(1, n + 4) .. string.char(f) .. rec:sub(n + 6))
  end
  return { 0 }
end

if op == "c" then
  -- One completed download counted without a peer (a browser's, kept by the WebSocket
  -- tracker): the torrent is created if it fits, like a restored one.
  if not exists then
    if not room() then return { 1, 0 } end
    newTorrent()
  end
  cnt.d = cnt.d + 1
  dirty = true
  gadd("d", 1)
  save()
  settle()
  return { 0, indexed }
end

if op == "R" then
  -- ARGV 11 downloaded, then (field, flags (1 seeder, 2 hidden, 4 counted), address, last
  -- seen) per peer.
  if not exists then
    if not room() then return { 1, 0 } end
    newTorrent()
  end
  local d = tonumber(ARGV[11])
  if d > cnt.d then
    gadd("d", d - cnt.d)
    cnt.d = d
    dirty = true
  end
  for j = 12, #ARGV, 4 do
    local field, flags, addr, seen = ARGV[j], tonumber(ARGV[j + 1]), ARGV[j + 2], tonumber(ARGV[j + 3])
    local fam, id = field:sub(1, 1), field:sub(2)
    local seeder = has(flags, 1)
    local n = cnt["s" .. fam] + cnt["l" .. fam]
    if now - seen <= timeout and n < maxP and not find(fam, id, seeder)
        and (maxTotal <= 0 or tonumber(redis.call("HGET", KG, "n") or "0") < maxTotal) then
      local f = 0
      if has(flags, HIDDEN) then f = f + HIDDEN end
      if has(flags, COUNTED) then f = f + COUNTED end
      insert(id, fam, seeder, f, "", addr, math.min(seen, now))
    end
  end
  save()
  settle()
  return { 0, indexed }
end

-- op "a": ARGV 11 field (family .. peer ID), 12 address, 13 key hash ("" for none),
-- 14 seeder ("1"), 15 event (0 none, 1 started, 2 completed, 3 stopped), 16 numwant,
-- 17 hidden ("1"), 18 a random number (where sampling starts), 19 peer IDs wanted ("1").
local field, addr, key = ARGV[11], ARGV[12], ARGV[13]
local seeder, event, want, hideNew = ARGV[14] == "1", tonumber(ARGV[15]), tonumber(ARGV[16]), ARGV[17] == "1"
local rnd, withIDs = tonumber(ARGV[18]), ARGV[19] == "1"
local STOPPED, COMPLETED = 3, 2
local fam, id = field:sub(1, 1), field:sub(2)
local n = alen(fam)

prune(32)
local i, k, rec = find(fam, id, seeder)
local hidden

if not rec then
  if event == STOPPED then
    settle()
    return result(0, false)
  end
  if not exists then
    if not room() then return { 1, 0, 0, 0, 0, 0 } end
    local c = admit(addr)
    if c ~= 0 then return { c, 0, 0, 0, 0, 0 } end
    newTorrent()
  else
    if cnt["s" .. fam] + cnt["l" .. fam] >= maxP then return result(2, false) end
    local c = admit(addr)
    if c ~= 0 then return result(c, false) end
  end
  local flags = 0
  if hideNew then flags = flags + HIDDEN end
  if event == COMPLETED then
    -- A peer whose first announce says completed finished while we did not know it.
    flags = flags + COUNTED
    cnt.d = cnt.d + 1
    gadd("d", 1)
  end
  if key ~= "" then flags = flags + KEYED end
  insert(id, fam, seeder, flags, key, addr, now)
  hidden = hideNew
else
  local f = rec:byte(n + 5)
  local oldAddr = rec:sub(1, n)
  if oldAddr ~= addr then
    -- Acting on a peer registered elsewhere: a keyed peer only with its key, a keyless one
    -- only from its own IP address.
    if has(f, KEYED) then
      if key == "" or key ~= rec:sub(n + 6, n + 13) then return result(5, false) end
    elseif oldAddr:sub(1, n - 2) ~= addr:sub(1, n - 2) then
      return result(6, false)
    end
  end
  if event == STOPPED then
    removePeer(i, k, id, rec)
    balance(i)
    save()
    settle()
    return result(0, false)
  end
  local wasSeeder = i % 2 == 0
  hidden = has(f, HIDDEN)
  if oldAddr ~= addr and ipOf(oldAddr) ~= ipOf(addr) then
    ipAdd(oldAddr, -1) -- a move adds no peer: counted under its new IP whatever the limit
    ipAdd(addr, 1)
  end
  if (event == COMPLETED or (seeder and not wasSeeder)) and not has(f, COUNTED) then
    f = f + COUNTED
    cnt.d = cnt.d + 1
    dirty = true
    gadd("d", 1)
  end
  if has(f, KEYED) then f = f - KEYED end
  if key ~= "" then f = f + KEYED end
  local r = record(addr, now, f, key)
  if seeder ~= wasSeeder then
    redis.call("HDEL", k, id)
    local from, to = CN[i], nil
    local old = i
    i, to = slot(fam, seeder)
    k = bkey(i, bucketOf(i, id))
    cnt[from], cnt[to] = cnt[from] - 1, cnt[to] + 1
    dirty = true
    gadd(from:sub(1, 1), -1)
    gadd(to:sub(1, 1), 1)
    redis.call("HSET", k, id, r)
    balance(old)
    balance(i)
  else
    redis.call("HSET", k, id, r)
  end
end
save()

-- pick adds to recs (and ids, if asked for) up to want random peers of the hashes is (with
-- sizes ns), never self, hidden or expired ones. A hash's share is drawn with HRANDFIELD from
-- its buckets in turn, starting at a random one.
local function pick(recs, ids, want, is, ns, self)
  if want <= 0 then return 0 end
  local total = 0
  for _, c in ipairs(ns) do total = total + c end
  local got = 0
  for x, i in ipairs(is) do
    local share
    if total <= want + 1 then
      share = ns[x]
    else
      -- Proportional share, the last hash taking what is left.
      share = math.floor(want * ns[x] / total + 0.5)
      if x == #is then share = want - got end
      share = math.min(share, ns[x])
    end
    local stop = math.min(got + share, want)
    local nl = i <= 3 and 6 or 18
    local b, tries = rnd % nb[i], 0
    while got < stop and tries < nb[i] do
      local kv = redis.call("HRANDFIELD", bkey(i, b), stop - got + 1, "WITHVALUES")
      for j = 1, #kv, 2 do
        if got >= stop then break end
        local pid, pr = kv[j], kv[j + 1]
        if pid ~= self and not has(pr:byte(nl + 5), HIDDEN) and seenOf(pr, nl) >= oldest then
          recs[#recs + 1] = pr
          if ids then ids[#ids + 1] = pid end
          got = got + 1
        end
      end
      b, tries = (b + 1) % nb[i], tries + 1
    end
  end
  return got
end

local recs = { ["4"] = {}, ["6"] = {} }
local ids = { ["4"] = false, ["6"] = false }
if withIDs then ids = { ["4"] = {}, ["6"] = {} } end
if want > 0 then
  local other = fam == "4" and "6" or "4"
  local function from(fm)
    local si, sc = slot(fm, true)
    local li, lc = slot(fm, false)
    if seeder then return { li }, { cnt[lc] } end
    return { si, li }, { cnt[sc], cnt[lc] }
  end
  local is, ns = from(fam)
  local got = pick(recs[fam], ids[fam], want, is, ns, id)
  is, ns = from(other)
  pick(recs[other], ids[other], want - got, is, ns, "")
end
return { 0, cnt.s4 + cnt.s6, cnt.l4 + cnt.l6, cnt.d, hidden and 1 or 0, indexed,
  table.concat(recs["4"]), table.concat(recs["6"]),
  withIDs and table.concat(ids["4"]) or "", withIDs and table.concat(ids["6"]) or "" }
