-- Shared helpers for the wrk scripts in this folder.
--
-- wrk runs every thread in its own Lua state, so each script loads this file itself:
--   dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
-- Seed data comes from files written by seed.py (paths in environment variables):
--   BENCH_TASKS_FILE  one "<access_token> <task_id>" pair per line (the task belongs to the token's user)
--   BENCH_CREDS_FILE  one "<email> <password>" pair per line
-- Requests are formatted once per thread in init() and then replayed round-robin, so
-- the per-request Lua cost stays tiny compared with the server's work.

local M = {}

M.thread_index = 0

-- Called from setup(): give every thread a distinct index so threads start at
-- different positions in the request ring.
local next_thread = 0
function M.setup(thread)
  thread:set("bench_thread_index", next_thread)
  next_thread = next_thread + 1
end

function M.read_pairs(env_name)
  local path = os.getenv(env_name)
  if path == nil or path == "" then
    error(env_name .. " is not set")
  end
  local rows = {}
  for line in io.lines(path) do
    local a, b = line:match("^(%S+)%s+(%S+)%s*$")
    if a ~= nil then
      rows[#rows + 1] = { a, b }
    end
  end
  if #rows == 0 then
    error(path .. " holds no rows")
  end
  return rows
end

-- Reorders "<token> <x>" rows so that consecutive rows belong to different users (round
-- robin over users, in first-seen order). seed.py writes each user's rows together; replayed
-- in that order, the 64 connections would all write as one user at a time, which measures
-- the per-user write lock of the change feed (models/events.rs) rather than the service.
function M.interleave_by_user(rows)
  local order, by_user = {}, {}
  for _, row in ipairs(rows) do
    if by_user[row[1]] == nil then
      by_user[row[1]] = {}
      order[#order + 1] = row[1]
    end
    table.insert(by_user[row[1]], row)
  end
  local out, round = {}, 1
  while #out < #rows do
    for _, token in ipairs(order) do
      local row = by_user[token][round]
      if row ~= nil then
        out[#out + 1] = row
      end
    end
    round = round + 1
  end
  return out
end

function M.json_headers(token)
  local h = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
  if token ~= nil then
    h["Authorization"] = "Bearer " .. token
  end
  return h
end

function M.auth_headers(token)
  return { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/json" }
end

-- A ring of pre-formatted requests, walked from a per-thread offset.
function M.ring(requests)
  local n = #requests
  local thread_index = tonumber(bench_thread_index) or 0
  local pos = (thread_index * 7919) % n
  return function()
    pos = pos + 1
    if pos > n then
      pos = 1
    end
    return requests[pos]
  end
end

return M
