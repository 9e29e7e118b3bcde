-- wrk script: rotate through a file of requests and report JSON (loadtests/wrk.py drives it).
--
--   wrk -s loadtests/wrk_rotate.lua URL -- REQUESTS_FILE [MARKER] [CAPTURE_FILE]
--
-- REQUESTS_FILE holds one line per request, fields separated by tabs:
--   H<TAB>name<TAB>value          a header sent with every request (lines before requests)
--   R<TAB>name<TAB>value          a header of the next request only (over an H header)
--   METHOD<TAB>path<TAB>body      a request; body may be empty
-- Every thread builds each request once (wrk.format) and then only hands out the prebuilt
-- strings in turn, from a starting point of its own, so rotating costs the generator
-- nothing per request. Responses are counted by status, and with MARKER given, those
-- whose body holds every tab-separated part of MARKER (plain substrings) are counted
-- too: a check that answers are
-- what the benchmark meant to measure; 429 and 503 answers without Retry-After are
-- counted as well (a client could not know when to retry). With CAPTURE_FILE given, the
-- bodies of 2xx answers are kept and written there by done(), one a line (the ingestion
-- benchmark reads the event ids it was given). done() prints one line "WRK_JSON {...}".

local threads = {}
local thread_count = 0

function setup(thread)
   thread:set("thread_number", thread_count)
   thread_count = thread_count + 1
   table.insert(threads, thread)
end

local prepared = {}
local position = 0
statuses = {}
marked = 0
no_retry_after = 0
captured = {}
local markers = {}
local capture = false

function init(args)
   local path = args[1]
   for part in (args[2] or ""):gmatch("[^\t]+") do
      table.insert(markers, part)
   end
   capture = args[3] ~= nil and args[3] ~= ""
   capture_path = args[3]  -- a global: done() runs in another Lua state and reads it
   local headers = {}
   local lines = {}
   local own = {}
   for line in io.lines(path) do
      local method, target, body = line:match("^([^\t]*)\t([^\t]*)\t?(.*)$")
      if method == "H" then
         headers[target] = body
      elseif method == "R" then
         own[target] = body
      elseif method and method ~= "" then
         table.insert(lines, {method, target, body, own})
         own = {}
      end
   end
   for _, r in ipairs(lines) do
      -- The phase's headers, the request's own over them; a body is JSON.
      local sent = {}
      for name, value in pairs(headers) do sent[name] = value end
      for name, value in pairs(r[4]) do sent[name] = value end
      if r[3] == "" then
         table.insert(prepared, wrk.format(r[1], r[2], sent))
      else
         sent["Content-Type"] = "application/json"
         table.insert(prepared, wrk.format(r[1], r[2], sent, r[3]))
      end
   end
   if #prepared == 0 then error("no requests in " .. path) end
   position = (thread_number * 7919) % #prepared
end

function request()
   position = position % #prepared + 1
   return prepared[position]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if #markers > 0 and body then
      local all = true
      for _, part in ipairs(markers) do
         if not body:find(part, 1, true) then
            all = false
            break
         end
      end
      if all then marked = marked + 1 end
   end
   if capture and status >= 200 and status < 300 then
      table.insert(captured, body)
   end
   if (status == 429 or status == 503) and headers["Retry-After"] == nil then
      no_retry_after = no_retry_after + 1
   end
end

local function pairs_json(t)
   local parts = {}
   for k, v in pairs(t) do
      table.insert(parts, string.format('"%s": %d', tostring(k), v))
   end
   return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
   local out = nil
   for _, thread in ipairs(threads) do
      local path = thread:get("capture_path")
      if path and path ~= "" then
         out = out or io.open(path, "w")
         for _, body in ipairs(thread:get("captured")) do
            out:write(body, "\n")
         end
      end
   end
   if out then out:close() end
   local all_statuses = {}
   local all_marked = 0
   local all_no_retry_after = 0
   for _, thread in ipairs(threads) do
      all_no_retry_after = all_no_retry_after + thread:get("no_retry_after")
      for status, n in pairs(thread:get("statuses")) do
         all_statuses[status] = (all_statuses[status] or 0) + n
      end
      all_marked = all_marked + thread:get("marked")
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"duration_us": %d, "requests": %d, "bytes": %d, '
         .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"latency_us": {"mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, '
         .. '"p999": %d}, "statuses": %s, "marked": %d, "no_retry_after": %d}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9),
      pairs_json(all_statuses), all_marked, all_no_retry_after))
end
