-- One owner with tens of thousands of tasks: GET "$BIG_PATH" (a first page of some listing)
-- with that owner's token "$BIG_TOKEN", over and over. run.sh sets both per scenario.
local path = os.getenv("BIG_PATH")
local token = os.getenv("BIG_TOKEN")
local request_bytes

function init(args)
  if path == nil or token == nil then
    error("BIG_PATH and BIG_TOKEN must be set")
  end
  request_bytes = wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
end

function request()
  return request_bytes
end
