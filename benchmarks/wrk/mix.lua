-- A mix of requests in one continuous closed-loop run (benchmarks/rss.py), taken in turn.
-- Arguments after `--`:
--   prefix  session id prefix of the pre-created ids that rename and patch work on
--   count   ids available from `<prefix>0` (rename and patch cycle over them)
--   item... a path starting with `/` (a GET of it), or `create`, `rename` or `patch` (as
--           write.lua sends them)
-- Run with one wrk thread (-t1): the ids are not sliced between threads.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
require("report")
done = report_done

local prefix, count, items, n
local headers = { ["Content-Type"] = "application/json" }

init = function(args)
  prefix = args[1] or "bench-w-"
  count = tonumber(args[2] or "1000")
  items = {}
  for i = 3, #args do
    table.insert(items, args[i])
  end
  if #items == 0 then
    error("mix.lua: no items after prefix and count")
  end
  n = 0
end

request = function()
  local item = items[(n % #items) + 1]
  local id = prefix .. tostring(math.floor(n / #items) % count)
  n = n + 1
  if string.sub(item, 1, 1) == "/" then
    return wrk.format("GET", item)
  elseif item == "create" then
    return wrk.format("POST", "/sessions?type=agent", headers,
      '{"session_name":"bench create","user_id":"bench-writer","agent_id":"basic-agent"}')
  elseif item == "rename" then
    return wrk.format("POST", "/sessions/" .. id .. "/rename?type=agent", headers,
      '{"session_name":"renamed ' .. tostring(n) .. '"}')
  elseif item == "patch" then
    return wrk.format("PATCH", "/sessions/" .. id .. "?type=agent", headers,
      '{"session_state":{"step":' .. tostring(n) .. '},"metadata":{"bench":true}}')
  end
  error("mix.lua: unknown item " .. tostring(item))
end
