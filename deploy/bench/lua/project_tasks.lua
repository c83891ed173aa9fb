-- GET /api/v1/projects/$BENCH_PROJECT_ID/tasks?limit=20 (first page of one shared project),
-- once per distinct token of BENCH_TASKS_FILE (its members), round-robin. Used by teams.sh.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local next_request

function setup(thread)
  common.setup(thread)
end

function init(args)
  local project = os.getenv("BENCH_PROJECT_ID")
  if project == nil or project == "" then
    error("BENCH_PROJECT_ID is not set")
  end
  local path = "/api/v1/projects/" .. project .. "/tasks?limit=20"
  local reqs, seen = {}, {}
  for _, row in ipairs(common.read_pairs("BENCH_TASKS_FILE")) do
    if not seen[row[1]] then
      seen[row[1]] = true
      reqs[#reqs + 1] = wrk.format("GET", path, common.auth_headers(row[1]))
    end
  end
  next_request = common.ring(reqs)
end

function request()
  return next_request()
end
