-- POST /api/v1/auth/login with valid credentials of the seeded users (argon2id verify each).
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local next_request

function setup(thread)
  common.setup(thread)
end

function init(args)
  local reqs = {}
  for i, row in ipairs(common.read_pairs("BENCH_CREDS_FILE")) do
    local body = string.format('{"email":"%s","password":"%s"}', row[1], row[2])
    reqs[i] = wrk.format("POST", "/api/v1/auth/login", common.json_headers(nil), body)
  end
  next_request = common.ring(reqs)
end

function request()
  return next_request()
end
