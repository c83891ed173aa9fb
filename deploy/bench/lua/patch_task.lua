-- PATCH /api/v1/tasks/{id} (no If-Match, so no 412s) alternating status/priority/title.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local next_request

function setup(thread)
  common.setup(thread)
end

local bodies = {
  '{"status":"in_progress"}',
  '{"priority":"high","status":"done"}',
  '{"title":"patched by wrk","priority":"low"}',
  '{"status":"todo","description":null}',
}

function init(args)
  local reqs = {}
  for i, row in ipairs(common.interleave_by_user(common.read_pairs("BENCH_TASKS_FILE"))) do
    reqs[i] = wrk.format("PATCH", "/api/v1/tasks/" .. row[2], common.json_headers(row[1]),
      bodies[(i % #bodies) + 1])
  end
  next_request = common.ring(reqs)
end

function request()
  return next_request()
end
