-- wrk script of the gateway benchmark: POST a one-row CSV body, as an
-- InvokeEndpoint call does. The same script drives the echo baseline.
--
-- With WRK_DELAY_MS set (e.g. 2.3), each connection pauses that long on
-- average between its requests, which paces wrk to a lower rate at the same
-- connection count (wrk has no fixed-rate mode; wrk2 is not in Debian).
wrk.method = "POST"
wrk.body = "0.5\n"
wrk.headers["Content-Type"] = "text/csv"

local pause = tonumber(os.getenv("WRK_DELAY_MS") or "")
if pause then
	local whole = math.floor(pause)
	local frac = pause - whole
	-- wrk takes whole milliseconds: round at random to keep the mean.
	function delay()
		if math.random() < frac then
			return whole + 1
		end
		return whole
	end
end
