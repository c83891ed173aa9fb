-- POST /api/v1/tasks with a small JSON body; tokens rotate over all seeded users.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local next_request

function setup(thread)
  common.setup(thread)
end

local priorities = { "low", "medium", "high" }

function init(args)
  local users, seen, n, reqs = {}, {}, 0, {}
  for _, row in ipairs(common.read_pairs("BENCH_TASKS_FILE")) do
    if not seen[row[1]] then
      seen[row[1]] = true
      users[#users + 1] = row[1]
    end
  end
  -- Four rounds over all users: consecutive requests belong to different users.
  for k = 1, 4 do
    for _, token in ipairs(users) do
      n = n + 1
      local body = string.format(
        '{"title":"bench task %d-%d","description":"created by wrk","priority":"%s","due_date":"2030-01-%02dT12:00:00Z"}',
        tonumber(bench_thread_index) or 0, n, priorities[(n % 3) + 1], (n % 28) + 1)
      reqs[#reqs + 1] = wrk.format("POST", "/api/v1/tasks", common.json_headers(token), body)
    end
  end
  next_request = common.ring(reqs)
end

function request()
  return next_request()
end
