-- wrk script of the serverless benchmark: POST the file named by WRK_BODY
-- (the example model's sample.csv) as text/csv, as InvokeEndpoint does. The
-- same script and body drive the real-time and the serverless endpoint.
local path = os.getenv("WRK_BODY") or error("set WRK_BODY to the request body's file")
local f = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "text/csv"
