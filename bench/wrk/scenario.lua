-- wrk script for every bench scenario.
--
--   wrk ... -s bench/wrk/scenario.lua URL -- MODE API_KEY N_CANDIDATES IDS_FILE RESULT_FILE
--
-- MODE: rest-write      POST /v1/candidates/job-match, 3 random distinct candidates
--       graphql-write   POST /graphql expressInterest, same document, input in variables
--       graphql-read    POST /graphql jobMatches(first: 50) with candidates
--       baseline-read   GET /baseline/job-matches?first=50 (the bare app's read)
--
-- Every thread counts what it sent and what came back (by status) and, for writes, keeps
-- the jobMatchId of every success; done() aggregates the per-thread tables and writes the
-- ids (one a line) to IDS_FILE and a JSON summary to RESULT_FILE.

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

local MUTATION = "mutation ExpressInterest($input: ExpressInterestInput!) "
  .. "{ expressInterest(input: $input) { message jobMatchId } }"
local PAGE = "query Page { jobMatches(first: 50) { edges { cursor node { id createdAt "
  .. "candidates { publicId } } } pageInfo { hasNextPage endCursor } } }"

function init(args)
  mode = args[1]
  n_candidates = tonumber(args[3])
  ids_file = args[4]
  result_file = args[5]
  sent = 0
  ok = 0
  bad_body = 0
  statuses = {}
  ids = {}
  math.randomseed(os.time() * 1000 + tid * 7919)
  wrk.headers["X-API-Key"] = args[2]
  wrk.headers["Content-Type"] = "application/json"
  if mode == "graphql-read" then
    read_request = wrk.format("POST", "/graphql", nil,
      '{"query":"' .. PAGE .. '","operationName":"Page"}')
  elseif mode == "baseline-read" then
    wrk.headers["Content-Type"] = nil
    read_request = wrk.format("GET", "/baseline/job-matches?first=50")
  end
end

local function pick3()
  local a = math.random(n_candidates)
  local b = a
  while b == a do b = math.random(n_candidates) end
  local c = a
  while c == a or c == b do c = math.random(n_candidates) end
  return string.format("cand-%07d", a), string.format("cand-%07d", b),
    string.format("cand-%07d", c)
end

local function candidates_json()
  local a, b, c = pick3()
  return '[{"publicId":"' .. a .. '"},{"publicId":"' .. b .. '"},{"publicId":"' .. c .. '"}]'
end

function request()
  sent = sent + 1
  if mode == "rest-write" then
    return wrk.format("POST", "/v1/candidates/job-match", nil,
      '{"candidates":' .. candidates_json() .. ',"additionalNotes":"bench run"}')
  elseif mode == "graphql-write" then
    return wrk.format("POST", "/graphql", nil,
      '{"query":"' .. MUTATION .. '","operationName":"ExpressInterest",'
      .. '"variables":{"input":{"candidates":' .. candidates_json()
      .. ',"additionalNotes":"bench run"}}}')
  end
  return read_request
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if mode == "rest-write" then
    if status == 201 then
      local id = string.match(body, '"jobMatchId":"([^"]+)"')
      if id then ok = ok + 1; ids[#ids + 1] = id else bad_body = bad_body + 1 end
    end
  elseif mode == "graphql-write" then
    if status == 200 then
      local id = string.match(body, '"jobMatchId":"([^"]+)"')
      if id and not string.find(body, '"errors"', 1, true) then
        ok = ok + 1; ids[#ids + 1] = id
      else
        bad_body = bad_body + 1
      end
    end
  else
    if status == 200 then
      if string.find(body, '"errors"', 1, true) or not string.find(body, '"edges"', 1, true) then
        bad_body = bad_body + 1
      else
        ok = ok + 1
      end
    end
  end
end

function done(summary, latency, requests)
  local total_sent, total_ok, total_bad = 0, 0, 0
  local all_statuses = {}
  local ids_out = io.open(threads[1]:get("ids_file"), "w")
  for _, thread in ipairs(threads) do
    total_sent = total_sent + thread:get("sent")
    total_ok = total_ok + thread:get("ok")
    total_bad = total_bad + thread:get("bad_body")
    for status, count in pairs(thread:get("statuses")) do
      all_statuses[status] = (all_statuses[status] or 0) + count
    end
    for _, id in ipairs(thread:get("ids")) do
      ids_out:write(id, "\n")
    end
  end
  ids_out:close()
  local parts = {}
  for status, count in pairs(all_statuses) do
    parts[#parts + 1] = string.format('"%d":%d', status, count)
  end
  local e = summary.errors
  local out = io.open(threads[1]:get("result_file"), "w")
  out:write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"sent":%d,"ok":%d,"bad_body":%d,'
    .. '"statuses":{%s},"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
    .. '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,"p50":%d,"p90":%d,'
    .. '"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes, total_sent, total_ok, total_bad,
    table.concat(parts, ","), e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
  out:close()
end
