-- wrk: POST a new Patient on every request (a different name each time).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/fhir+json"
local n = 0
request = function()
  n = n + 1
  local body = string.format(
    '{"resourceType":"Patient","name":[{"family":"Bench%d","given":["Wrk%d"]}],"birthDate":"1990-01-01","gender":"female"}',
    math.random(1, 1000000000), n)
  return wrk.format(nil, "/fhir/Patient", nil, body)
end
