-- trackerbench: BEP 3 HTTP announce/scrape load for wrk 4.x (LuaJIT).
-- (bench/web's own copy of trackerbench's wrk/announce.lua, used by scripts/bench-web.sh.)
--
--   wrk -t1 -c64 -d10s --latency -s announce.lua http://127.0.0.1:6969/announce -- \
--       torrents=1000 peers=100000 started=10 scrape=0 scrape_n=1 numwant=50 seeders=20
--
-- Arguments (all optional, key=value after "--"):
--   torrents=N    distinct info_hashes                              (default 1000)
--   peers=N       peer population; every request picks a uniformly random slot in [0,N) (100000)
--   started=P     percent of announces with event=started, the rest carry no event     (10)
--   scrape=P      percent of requests that are scrapes instead of announces           (0)
--   scrape_n=K    info_hashes per scrape request                                      (1)
--   scrape_path=  scrape path (default: the URL path with "announce" -> "scrape")
--   numwant=N     numwant parameter                                                   (50)
--   seeders=P     percent of slots announcing left=0 (fixed per slot)                 (20)
--   verify=1      parse every reply; count non-200 and "failure reason" bodies (slower)
--   label=TEXT    copied into the TB_WRK result line
--
-- The population generator is bit-identical to ../trackerload/population.go:
--   torrent(s) = s % torrents, info_hash(t) = 5 xorshift32 words seeded by mix(t, 0x1b873593),
--   peer_id(s) = "-TB0001-" + 3 xorshift32 words seeded by mix(s, 0x85ebca6b),
--   port(s) = 1024 + floor(s / torrents) % 64000,
--   seeder(s) = uint32(mix(s, 0xc2b2ae35)) % 100 < seeders  (left=0, else left=1048576).
-- Binary values are percent-encoded byte by byte (unreserved bytes literal, others %XX).
-- wrk's own headers (-H, e.g. "Connection: close") are sent with every request.

local bit = require("bit")
local band, bxor, lshift, rshift, tobit = bit.band, bit.bxor, bit.lshift, bit.rshift, bit.tobit
local floor, random = math.floor, math.random
local concat = table.concat

local TWO32 = 4294967296
local K_IH, K_PID, K_SEED = 0x1b873593, 0x85ebca6b, 0xc2b2ae35

local function xs(x)
   x = bxor(x, lshift(x, 13))
   x = bxor(x, rshift(x, 17))
   x = bxor(x, lshift(x, 5))
   return x
end

-- x = uint32((i+1) * 2654435761) + k, computed exactly in doubles (2654435761 = 40503*65536 + 31153)
local function mix(i, k)
   local n = i + 1
   local x = (n * 31153 + ((n * 40503) % 65536) * 65536) % TWO32
   x = tobit((x + k) % TWO32)
   if x == 0 then x = 1 end
   for _ = 1, 3 do x = xs(x) end
   return x
end

local ENC = {}
for b = 0, 255 do
   local c = string.char(b)
   if c:match("[A-Za-z0-9%-%._~]") then ENC[b] = c else ENC[b] = string.format("%%%02X", b) end
end

local function enc_words(x, words, out)
   for _ = 1, words do
      x = xs(x)
      out[#out + 1] = ENC[band(rshift(x, 24), 255)]
      out[#out + 1] = ENC[band(rshift(x, 16), 255)]
      out[#out + 1] = ENC[band(rshift(x, 8), 255)]
      out[#out + 1] = ENC[band(x, 255)]
   end
end

local cfg = {
   torrents = 1000, peers = 100000, started = 10, scrape = 0, scrape_n = 1,
   numwant = 50, seeders = 20, verify = 0, label = "", scrape_path = nil,
}

local T, N, IH, PID, CACHE_PID
local A_PFX, S_PFX, TAIL, MID
non200, bad_body = 0, 0 -- globals: read by done() via thread:get()

local function pid_enc(s)
   local p = CACHE_PID and PID[s]
   if p then return p end
   local out = { "-TB0001-" }
   enc_words(mix(s, K_PID), 3, out)
   p = concat(out)
   if CACHE_PID then PID[s] = p end
   return p
end

local tid_counter = 0
local threads = {}

function setup(thread)
   tid_counter = tid_counter + 1
   thread:set("tid", tid_counter)
   table.insert(threads, thread)
end

function init(args)
   for _, a in ipairs(args) do
      local k, v = a:match("^([%w_]+)=(.*)$")
      if not k or cfg[k] == nil and k ~= "scrape_path" then
         error("announce.lua: bad argument '" .. a .. "'")
      end
      cfg[k] = tonumber(v) or v
   end
   T, N = cfg.torrents, cfg.peers
   tb_label = tostring(cfg.label) -- global: done() runs in another Lua state and reads it via thread:get()
   IH = {}
   for t = 0, T - 1 do
      local out = {}
      enc_words(mix(t, K_IH), 5, out)
      IH[t] = concat(out)
   end
   PID = {}
   CACHE_PID = N <= 250000

   local path = wrk.path
   local sep = path:find("?", 1, true) and "&" or "?"
   local spath = cfg.scrape_path
   if not spath then
      local i, j = path:find("announce[^/]*$")
      if i then spath = path:sub(1, i - 1) .. "scrape" .. path:sub(j + 1) end
   end
   if cfg.scrape > 0 and not spath then error("announce.lua: cannot derive scrape path from " .. path) end
   A_PFX = "GET " .. path .. sep .. "info_hash="
   if spath then S_PFX = "GET " .. spath .. (spath:find("?", 1, true) and "&" or "?") .. "info_hash=" end
   MID = "&compact=1&numwant=" .. cfg.numwant

   local host = wrk.headers["Host"]
   if not host then
      host = wrk.host
      if wrk.port then host = host .. ":" .. wrk.port end
   end
   local h = { " HTTP/1.1\r\nHost: ", host, "\r\n" }
   for name, value in pairs(wrk.headers) do
      if name ~= "Host" then h[#h + 1] = name .. ": " .. value .. "\r\n" end
   end
   h[#h + 1] = "\r\n"
   TAIL = concat(h)

   local tid = wrk.thread:get("tid") or 1
   math.randomseed(os.time() * 1000 + tid * 7919 + floor(os.clock() * 1e6))

   if cfg.verify == 1 then
      response = function(status, headers, body)
         if status ~= 200 then
            non200 = non200 + 1
         elseif body and body:find("failure reason", 1, true) then
            bad_body = bad_body + 1
         end
      end
   end
end

function request()
   if cfg.scrape > 0 and random(100) <= cfg.scrape then
      local parts = { S_PFX, IH[random(0, T - 1)] }
      for _ = 2, cfg.scrape_n do
         parts[#parts + 1] = "&info_hash="
         parts[#parts + 1] = IH[random(0, T - 1)]
      end
      parts[#parts + 1] = TAIL
      return concat(parts)
   end
   local s = random(0, N - 1)
   local ev = ""
   if random(100) <= cfg.started then ev = "&event=started" end
   local left = ((mix(s, K_SEED) % TWO32) % 100 < cfg.seeders) and "0" or "1048576"
   return A_PFX .. IH[s % T] .. "&peer_id=" .. pid_enc(s) .. "&port=" .. (1024 + floor(s / T) % 64000)
      .. "&uploaded=0&downloaded=0&left=" .. left .. MID .. ev .. TAIL
end

function done(summary, latency, requests)
   local secs = summary.duration / 1e6
   local e = summary.errors
   local nr, bb = 0, 0
   local label = threads[1] and threads[1]:get("tb_label") or ""
   for _, t in ipairs(threads) do
      nr = nr + (tonumber(t:get("non200")) or 0)
      bb = bb + (tonumber(t:get("bad_body")) or 0)
   end
   io.write(string.format(
      "TB_WRK label=%s requests=%d secs=%.3f rps=%.1f bytes_per_resp=%.1f p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d " ..
      "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d verify_non200=%d verify_failure=%d\n",
      tostring(label), summary.requests, secs, summary.requests / secs, summary.bytes / math.max(summary.requests, 1),
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout, nr, bb))
end
