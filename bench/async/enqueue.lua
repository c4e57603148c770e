-- wrk script of the async benchmark: InvokeEndpointAsync as the REST call
-- the SDKs make, unsigned (accepted on loopback without access keys): an
-- empty POST to /endpoints/<name>/async-invocations whose input is named by
-- X-Amzn-SageMaker-InputLocation (WRK_INPUT). Every 202 is a request stored
-- durably in the queue; anything else is counted by wrk as non-2xx.
wrk.method = "POST"
wrk.headers["X-Amzn-SageMaker-InputLocation"] = os.getenv("WRK_INPUT") or error("set WRK_INPUT to s3://bucket/key")
wrk.headers["X-Amzn-SageMaker-Content-Type"] = "text/csv"
wrk.headers["Content-Length"] = "0"
