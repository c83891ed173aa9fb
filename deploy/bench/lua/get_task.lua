-- GET /api/v1/tasks/{id} with the owner's bearer token.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local next_request

function setup(thread)
  common.setup(thread)
end

function init(args)
  local reqs = {}
  for i, row in ipairs(common.read_pairs("BENCH_TASKS_FILE")) do
    reqs[i] = wrk.format("GET", "/api/v1/tasks/" .. row[2], common.auth_headers(row[1]))
  end
  next_request = common.ring(reqs)
end

function request()
  return next_request()
end
