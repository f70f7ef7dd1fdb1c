-- wrk: GET /fhir/Patient/<id>, cycling through the ids in $IDS_FILE.
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
local i = 0
request = function()
  i = i % #ids + 1
  return wrk.format("GET", "/fhir/Patient/" .. ids[i])
end
