-- GET /api/v1/tasks?limit=20 (first page, default sort -created_at) for many users.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local next_request

function setup(thread)
  common.setup(thread)
end

function init(args)
  local reqs, seen = {}, {}
  for _, row in ipairs(common.read_pairs("BENCH_TASKS_FILE")) do
    if not seen[row[1]] then
      seen[row[1]] = true
      reqs[#reqs + 1] = wrk.format("GET", "/api/v1/tasks?limit=20", common.auth_headers(row[1]))
    end
  end
  next_request = common.ring(reqs)
end

function request()
  return next_request()
end
