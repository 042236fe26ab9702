-- wrk: frontend API evaluation for a different user on every request.
local token = os.getenv("BENCH_TOKEN")
local counter = 0
request = function()
  counter = counter + 1
  local uid = (counter * 7919) % 100000
  local path = "/api/frontend?userId=" .. uid .. "&properties%5Bplan%5D=pro&properties%5Bcountry%5D=NO&properties%5Bseats%5D=12"
  return wrk.format("GET", path, { ["Authorization"] = token, ["Accept"] = "application/json" })
end
