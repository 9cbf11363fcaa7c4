-- POST a bet per request, as many players, on one open event: no Idempotency-Key, so each
-- request places a new bet. The hello world gets the very same requests.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "summary.lua")

local event_id = os.getenv("BENCH_EVENT_ID")
local tokens = {}
for t in string.gmatch(os.getenv("BENCH_TOKENS"), "[^,]+") do
  tokens[#tokens + 1] = t
end
local markets = { "team_1", "team_2", "draw" }
local n = 0

request = function()
  n = n + 1
  local body = string.format('{"event_id": "%s", "market": "%s", "amount": "%d.00"}',
    event_id, markets[n % 3 + 1], n % 50 + 1)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[n % #tokens + 1],
  }
  return wrk.format("POST", nil, headers, body)
end
