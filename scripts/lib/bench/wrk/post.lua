-- wrk script of scripts/bench: POSTs a JSON-RPC body with a bearer token.
-- Environment (read once per thread):
--   BENCH_BODY      file holding the request body (sent as is)
--   BENCH_MODE      same | rotate | distinct
--   BENCH_TOKENS    same: file whose first line is the token; rotate: file of tokens, one a
--                   line, cycled through (BENCH_ROTATE of them); distinct: a file prefix,
--                   thread T reads "<prefix>T.txt" from byte BENCH_OFFSET_T on, each token once
--   BENCH_ROTATE    rotate: how many lines of the file to cycle through
-- done() prints one line per thread: "bench-tokens thread=T end=<byte offset> used=<n> wraps=<n>".
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

local headers, body, mode, tokens, ntokens, file, filename, start
used, wraps, pos = 0, 0, 0

function init(args)
  body = slurp(os.getenv("BENCH_BODY"))
  mode = os.getenv("BENCH_MODE") or "same"
  -- wrk.headers already holds Host (and any -H); keep them.
  headers = wrk.headers
  headers["Content-Type"] = "application/json"
  headers["Accept"] = "application/json, text/event-stream"
  local source = os.getenv("BENCH_TOKENS")
  if mode == "same" then
    local f = assert(io.open(source, "rb"))
    headers["Authorization"] = "Bearer " .. f:read("*l")
    f:close()
    wrk.body = body
    wrk.method = "POST"
  elseif mode == "rotate" then
    local limit = tonumber(os.getenv("BENCH_ROTATE"))
    tokens = {}
    for line in io.lines(source) do
      tokens[#tokens + 1] = "Bearer " .. line
      if #tokens >= limit then break end
    end
    ntokens = #tokens
    -- Threads start at different places in the cycle.
    used = math.floor(ntokens * id / 2)
  else
    filename = source .. id .. ".txt"
    start = tonumber(os.getenv("BENCH_OFFSET_" .. id) or "0")
    file = assert(io.open(filename, "rb"))
    file:seek("set", start)
    pos = start
  end
end

-- Without request(), wrk builds the one request once (static): mode "same".
local function next_request()
  if mode == "rotate" then
    used = used + 1
    headers["Authorization"] = tokens[(used % ntokens) + 1]
  else
    local line = file:read("*l")
    if line == nil then
      wraps = wraps + 1
      file:seek("set", 0)
      pos = 0
      line = file:read("*l")
    end
    pos = pos + #line + 1
    used = used + 1
    headers["Authorization"] = "Bearer " .. line
  end
  return wrk.format("POST", nil, headers, body)
end
if (os.getenv("BENCH_MODE") or "same") ~= "same" then request = next_request end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    io.write(string.format("bench-tokens thread=%d end=%d used=%d wraps=%d\n",
      thread:get("id"), thread:get("pos"), thread:get("used"), thread:get("wraps")))
  end
end
