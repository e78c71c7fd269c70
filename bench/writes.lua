-- wrk script for the write rows of `make bench`: every request is built here, with data of its own.
--   wrk ... -s bench/writes.lua http://host:port -- /path/to/data.lua
-- data.lua (written by bench/bench.py before each run) returns
--   {mode = "post" | "post_idem" | "patch", tag = "<unique per run>", threads = <wrk -t>,
--    actors = {{key = "dc_...", member = "<member id>"}, ...},   -- whose key signs a request
--    deals = {{id = "<deal id>", version = <n>}, ...}}           -- patch: the deals to patch
--
-- post:      POST /v1/deals, a new deal owned by the signing seller; the actors take turns
--            request by request (wrk has no per-connection hook), so every actor gets an equal share.
-- post_idem: the same, with an Idempotency-Key of its own on every request.
-- patch:     PATCH /v1/deals/{id} with If-Match. Each thread has its own deals (twice as many as
--            its connections); a request takes an idle deal and sends the version it last saw,
--            and response() reads the new version from the ETag and hands the deal back. So no
--            two requests in flight touch the same deal and every If-Match is the current one.
--            After a failed write the deal's version is unknown: its next request is a GET that
--            reads the ETag (it shows in the row's errors anyway).
-- The BENCH_RESULT line comes from report.lua's done(), with the count of each response status.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  threads[#threads + 1] = thread
end

-- For report.lua's done(): how many responses of each status, over all threads.
function extra_result()
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      total[status] = (total[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(total) do
    parts[#parts + 1] = string.format('"%d":%d', status, count)
  end
  return ',"statuses":{' .. table.concat(parts, ",") .. "}"
end

local STAGES = { "prospecting", "qualification", "discovery", "proposal", "negotiation" }
local UUID = "%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x"

statuses = {} -- status -> responses, read by extra_result() through thread:get
local data, actors
local n = 0
local deals, by_id, idle = {}, {}, {}

function init(args)
  data = dofile(args[1])
  tid = tid or 0
  actors = {}
  for i, actor in ipairs(data.actors) do
    actors[i] = { member = actor.member, auth = "Bearer " .. actor.key }
  end
  if data.mode == "patch" then
    for i, d in ipairs(data.deals) do
      if (i - 1) % data.threads == tid then
        local deal = { id = d.id, version = d.version, path = "/v1/deals/" .. d.id, busy = false, sent = 0 }
        deals[#deals + 1] = deal
        by_id[d.id] = deal
        idle[#idle + 1] = deal
      end
    end
    if #deals == 0 then
      error("writes.lua: no deals for thread " .. tid)
    end
  end
end

local function post()
  n = n + 1
  local actor = actors[(n + tid * 7) % #actors + 1]
  local body = string.format(
    '{"name":"Bench deal %s-%d-%d","account_name":"Account %d",' ..
    '"amount":{"amount":"%d.%02d","currency":"EUR"},"expected_close_date":"2027-%02d-%02d",' ..
    '"stage":"%s","owner_id":"%s"}',
    data.tag, tid, n, n % 997, 100 + n % 100000, n % 100, 1 + n % 12, 1 + n % 28, STAGES[1 + n % 5], actor.member)
  local headers = { ["Authorization"] = actor.auth, ["Content-Type"] = "application/json" }
  if data.mode == "post_idem" then
    headers["Idempotency-Key"] = data.tag .. "-" .. tid .. "-" .. n
  end
  return wrk.format("POST", "/v1/deals", headers, body)
end

-- Every deal is in flight: one of them lost its response (a socket error or a timeout). Take
-- the one sent longest ago and read its version again.
local function reclaim()
  local oldest
  for _, deal in ipairs(deals) do
    if deal.busy and (oldest == nil or deal.sent < oldest.sent) then
      oldest = deal
    end
  end
  oldest.version = nil
  return oldest
end

local function patch()
  local deal = table.remove(idle, 1) or reclaim()
  n = n + 1
  deal.busy, deal.sent = true, n
  local actor = actors[1]
  if deal.version == nil then
    return wrk.format("GET", deal.path, { ["Authorization"] = actor.auth })
  end
  local headers = {
    ["Authorization"] = actor.auth,
    ["Content-Type"] = "application/json",
    ["If-Match"] = '"' .. deal.version .. '"',
  }
  local body = string.format(
    '{"name":"Patched %s-%d-%d","amount":{"amount":"%d.00","currency":"EUR"}}', data.tag, tid, n, 1 + n % 100000)
  return wrk.format("PATCH", deal.path, headers, body)
end

function request()
  if data.mode == "patch" then
    return patch()
  end
  return post()
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if data.mode ~= "patch" then
    return
  end
  -- The deal's id is the first UUID of both a deal document and a problem (its `instance`).
  local id = body and body:match(UUID)
  local deal = id and by_id[id:lower()]
  if deal == nil or not deal.busy then
    return
  end
  deal.busy = false
  local etag = headers["etag"] or headers["ETag"] or headers["Etag"]
  if status >= 200 and status < 300 and etag then
    deal.version = tonumber(etag:match("%d+"))
  else
    deal.version = nil
  end
  idle[#idle + 1] = deal
end
