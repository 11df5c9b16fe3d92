-- wrk script: POST the same JSON body on every request.
-- The body is read once from the file named by the BODY_FILE environment variable.
local path = os.getenv("BODY_FILE")
if path == nil then
  error("set BODY_FILE to the request body's path")
end
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
-- An API key for servers that check them: AUTHORIZATION="Bearer mp_...".
local authorization = os.getenv("AUTHORIZATION")
if authorization ~= nil and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end
