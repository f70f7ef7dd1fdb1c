-- wrk: GET <READ_PATH><id>, cycling through the ids in $IDS_FILE.
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
local i = 0
-- READ_PATH: the type's path, /fhir/Patient/ unless told otherwise.
local path = os.getenv("READ_PATH") or "/fhir/Patient/"
request = function()
  i = i % #ids + 1
  return wrk.format("GET", path .. ids[i])
end
