#!/usr/bin/python3
"""A bring-your-own model server for inferbox (and SageMaker): the container
contract in one file, standard library only.

Contract:
  serve.py serve                 argv[1] must be "serve" (docker run <image> serve)
  SAGEMAKER_BIND_TO_PORT         port to listen on (default 8080), on 127.0.0.1
                                 (MODEL_SERVER_HOST overrides, e.g. 0.0.0.0 in a container)
  SM_MODEL_DIR, or SAGEMAKER_BASE_DIR + "/model", or /opt/ml/model
                                 where model.json is
  GET  /ping                     200, empty body, once the model is loaded
  POST /invocations              predictions (see below)
  GET  /execution-parameters     preferred batch transform settings

Input (Content-Type):
  text/csv                       one record per line, 30 numbers, no header
  application/json               {"instances": [[...], ...]}, [[...], ...] or [...]
  application/jsonlines          one JSON array per line (also application/x-ndjson)
Output (Accept):
  application/json (default)     {"predictions": [{"label": "benign", "score": 0.99}, ...]}
  text/csv                       "benign,0.99" per record
  application/x-ndjson, application/jsonlines, or custom attribute stream=true:
                                 one JSON object per record, each sent (and flushed)
                                 as soon as it is computed; CSV and JSON-lines input
                                 is read line by line, so the first answer leaves
                                 before the last record arrives.
score is the probability of "benign" (the model's classes[1]).
"""
import json
import math
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STREAM_TYPES = ("application/x-ndjson", "application/jsonlines", "application/x-jsonlines")


class BadInput(Exception):
    status = 400


class UnsupportedType(BadInput):
    status = 415


class Model:
    def __init__(self, path):
        with open(path) as f:
            m = json.load(f)
        self.features = m["features"]
        self.classes = m["classes"]
        self.mean, self.scale, self.coef = m["mean"], m["scale"], m["coef"]
        self.intercept = m["intercept"]
        if not (len(self.features) == len(self.mean) == len(self.scale) == len(self.coef)):
            raise ValueError("%s: features, mean, scale and coef differ in length" % path)

    def predict(self, row, n):
        if len(row) != len(self.coef):
            raise BadInput("record %d: expected %d values, got %d" % (n, len(self.coef), len(row)))
        try:
            z = self.intercept + sum(c * (float(x) - m) / s
                                     for c, x, m, s in zip(self.coef, row, self.mean, self.scale))
        except (TypeError, ValueError) as e:
            raise BadInput("record %d: %s" % (n, e))
        score = 1.0 / (1.0 + math.exp(-z)) if z >= -700 else 0.0
        return {"label": self.classes[1] if score >= 0.5 else self.classes[0], "score": score}


def model_dir():
    if os.environ.get("SM_MODEL_DIR"):
        return os.environ["SM_MODEL_DIR"]
    return os.path.join(os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml"), "model")


def media_type(value):
    return (value or "").split(";")[0].strip().lower()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes
    model = None  # set in main

    def log_message(self, fmt, *args):
        # Access log on stdout (inferbox logs it at info level). No payloads.
        sys.stdout.write("access: %s\n" % (fmt % args))
        sys.stdout.flush()

    # --- request body, as it arrives --------------------------------------
    def body_chunks(self):
        """The request body as it arrives. do_POST makes one generator per
        request, so drain() continues where parsing stopped."""
        return self._body

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                data = self.rfile.read(size)
                self.rfile.readline()
                yield data
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                data = self.rfile.read1(min(left, 65536))
                if not data:
                    return
                left -= len(data)
                yield data

    def body_lines(self):
        buf = b""
        for data in self.body_chunks():
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield line
        if buf:
            yield buf

    # --- records ------------------------------------------------------------
    def records(self, ctype):
        """Yields records (lists of values) from the request body."""
        if ctype == "text/csv":
            for line in self.body_lines():
                line = line.decode("utf-8", "replace").strip()
                if line:
                    yield [v.strip() for v in line.split(",")]
        elif ctype in STREAM_TYPES:
            for line in self.body_lines():
                if line.strip():
                    yield self.parse_json(line)
        elif ctype == "application/json":
            doc = self.parse_json(b"".join(self.body_chunks()))
            if isinstance(doc, dict):
                doc = doc.get("instances", doc.get("features"))
            if isinstance(doc, list) and doc and not isinstance(doc[0], list):
                doc = [doc]
            if not isinstance(doc, list):
                raise BadInput('expected {"instances": [[...], ...]}, [[...], ...] or [...]')
            yield from doc
        else:
            raise UnsupportedType("unsupported content type %r: use text/csv, application/json "
                           "or application/jsonlines" % ctype)

    @staticmethod
    def parse_json(data):
        try:
            return json.loads(data)
        except ValueError as e:
            raise BadInput("invalid JSON: %s" % e)

    # --- responses ----------------------------------------------------------
    def send(self, code, body, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Amzn-SageMaker-Custom-Attributes", "model=logreg-breast-cancer")
        self.end_headers()
        self.wfile.write(body)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        if self.path == "/ping":
            self.send(200 if self.model else 503, b"")
        elif self.path == "/execution-parameters":
            self.send(200, json.dumps({"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD",
                                       "MaxPayloadInMB": 6}).encode(), "application/json")
        else:
            self.send(404, b"not found")

    def do_POST(self):
        self._body = self._read_body()
        if self.path != "/invocations":
            self.drain()
            self.send(404, b"not found")
            return
        ctype = media_type(self.headers.get("Content-Type")) or "text/csv"
        accept = media_type(self.headers.get("Accept"))
        if accept in ("", "*/*"):
            accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json")
        attrs = self.headers.get("X-Amzn-SageMaker-Custom-Attributes", "").replace(" ", "").lower()
        if accept in STREAM_TYPES or "stream=true" in attrs.replace(",", ";").split(";"):
            self.stream(ctype)
            return
        if accept not in ("application/json", "text/csv"):
            self.drain()
            self.send(406, b"unsupported Accept %r: use application/json, text/csv "
                      b"or application/x-ndjson" % accept.encode())
            return
        try:
            preds = [self.model.predict(r, i + 1) for i, r in enumerate(self.records(ctype))]
        except BadInput as e:
            self.drain()
            self.send(e.status, str(e).encode())
            return
        if accept == "text/csv":
            out = "".join("%s,%r\n" % (p["label"], p["score"]) for p in preds)
            self.send(200, out.encode(), "text/csv")
        else:
            self.send(200, json.dumps({"predictions": preds}).encode(), "application/json")

    def drain(self):
        try:
            for _ in self.body_chunks():
                pass
        except (ValueError, OSError):
            self.close_connection = True

    def stream(self, ctype):
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Amzn-SageMaker-Custom-Attributes", "model=logreg-breast-cancer")
        self.end_headers()
        self.wfile.flush()
        try:
            for i, r in enumerate(self.records(ctype)):
                self.chunk(json.dumps(self.model.predict(r, i + 1)).encode() + b"\n")
        except BadInput as e:
            # The status is gone; the error is the last line of the stream.
            self.chunk(json.dumps({"error": str(e)}).encode() + b"\n")
            self.close_connection = True
        self.chunk(b"")


def main():
    if sys.argv[1:2] != ["serve"]:
        sys.stderr.write("usage: %s serve\n" % sys.argv[0])
        sys.exit(2)
    path = os.path.join(model_dir(), "model.json")
    try:
        Handler.model = Model(path)
    except (OSError, ValueError, KeyError) as e:
        sys.stderr.write("cannot load model from %s: %s\n" % (path, e))
        sys.exit(1)
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    host = os.environ.get("MODEL_SERVER_HOST", "127.0.0.1")
    srv = ThreadingHTTPServer((host, port), Handler)
    srv.daemon_threads = True
    # SIGTERM: stop accepting and return from serve_forever.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown, daemon=True).start())
    print("serving %s on %s:%d (%d features, classes %s)" % (
        path, host, port, len(Handler.model.features), "/".join(Handler.model.classes)), flush=True)
    srv.serve_forever()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
