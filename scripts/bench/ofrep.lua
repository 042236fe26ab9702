-- wrk: OFREP single-flag evaluation for a different user on every request.
local token = os.getenv("BENCH_TOKEN")
local flag = os.getenv("BENCH_FLAG") or "flag-0003"
local counter = 0
request = function()
  counter = counter + 1
  local uid = (counter * 7919) % 100000
  local body = '{"context":{"targetingKey":"' .. uid .. '","plan":"pro","email":"a@example.com","country":"NO","seats":12}}'
  return wrk.format("POST", "/ofrep/v1/evaluate/flags/" .. flag,
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end
