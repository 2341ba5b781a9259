-- Writes on pre-created ids, closed loop. Arguments after `--`:
--   kind    create | rename | patch | delete
--   prefix  session id prefix of the pre-created ids (rename, patch, delete)
--   first   first id number to use (delete: each id once; the suite moves it on every round)
--   count   ids available from `first` (rename, patch cycle over them; delete never reuses one)
-- Every wrk thread has its own Lua state: setup() gives each a disjoint slice of the ids.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
require("report")
done = report_done

local threads = {}
local next_thread = 0

setup = function(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

local kind, prefix, first, count, tid, nthreads, n
local headers = { ["Content-Type"] = "application/json" }

init = function(args)
  kind = args[1] or "create"
  prefix = args[2] or "bench-w-"
  first = tonumber(args[3] or "0")
  count = tonumber(args[4] or "1000")
  nthreads = tonumber(args[5] or "1")
  tid = thread_id or 0
  n = 0
end

local function next_id()
  -- thread `tid` takes ids first+tid, first+tid+nthreads, ...; rename/patch wrap, delete must not.
  local k = tid + n * nthreads
  n = n + 1
  if kind ~= "delete" then
    k = k % count
  end
  return prefix .. tostring(first + k)
end

request = function()
  if kind == "create" then
    return wrk.format("POST", "/sessions?type=agent", headers,
      '{"session_name":"bench create","user_id":"bench-writer","agent_id":"basic-agent"}')
  elseif kind == "rename" then
    return wrk.format("POST", "/sessions/" .. next_id() .. "/rename?type=agent", headers,
      '{"session_name":"renamed ' .. tostring(n) .. '"}')
  elseif kind == "patch" then
    return wrk.format("PATCH", "/sessions/" .. next_id() .. "?type=agent", headers,
      '{"session_state":{"step":' .. tostring(n) .. '},"metadata":{"bench":true}}')
  elseif kind == "delete" then
    return wrk.format("DELETE", "/sessions/" .. next_id(), nil, nil)
  end
  error("unknown write kind " .. tostring(kind))
end
