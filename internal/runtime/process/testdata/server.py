#!/usr/bin/python3
"""Test fixture: a model server speaking the SageMaker container contract.

Behaviour per request is chosen by the custom attributes header, e.g.
"mode=stream;chunks=3;gate=/tmp/x" (see do_POST); without one, by the
environment (batch transform sends no custom attributes): TEST_MODE is the
default mode, TEST_SLEEP_MS a delay before every answer, TEST_BARRIER=n
holds each request until n are in flight at once (10 s at most). Start-up
behaviour is chosen by environment variables (see main). Standard library
only.
"""
import json
import os
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


import threading

_lock = threading.Condition()
_inflight = [0, 0]  # now, most seen


def barrier(n):
    """Waits until n requests are in flight at once; True if they were."""
    with _lock:
        _lock.notify_all()
        return _lock.wait_for(lambda: _inflight[1] >= n, timeout=10)


def wait_for(path):
    while not os.path.exists(path):
        time.sleep(0.01)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes

    def log_message(self, fmt, *args):
        sys.stderr.write("fixture access: " + (fmt % args) + "\n")
        sys.stderr.flush()

    # --- helpers -----------------------------------------------------------
    def attrs(self):
        out = {}
        raw = self.headers.get("X-Amzn-SageMaker-Custom-Attributes", "")
        for part in raw.replace(",", ";").split(";"):
            if "=" in part:
                k, v = part.split("=", 1)
                out[k.strip()] = v.strip()
        return out

    def body_chunks(self, most=65536):
        """Yields the request body as it arrives (Content-Length or chunked),
        in pieces of at most `most` bytes when it has a Content-Length."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                data = self.rfile.read(size)
                self.rfile.readline()
                yield data
        else:
            n = int(self.headers.get("Content-Length", "0"))
            while n > 0:
                data = self.rfile.read1(min(n, most))
                if not data:
                    return
                n -= len(data)
                yield data

    def send_plain(self, code, body, ctype="text/plain", extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def start_chunked(self, ctype="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # --- routes ------------------------------------------------------------
    def do_GET(self):
        if self.path == "/ping":
            status = int(os.environ.get("TEST_PING_STATUS", "200"))
            gate = os.environ.get("TEST_START_GATE")
            if gate:
                open(gate + ".waiting", "w").close()
                if not os.path.exists(gate):
                    status = 503
            self.send_plain(status, b"")
        elif self.path == "/execution-parameters":
            body = json.dumps({"MaxConcurrentTransforms": 3, "BatchStrategy": "MULTI_RECORD",
                               "MaxPayloadInMB": 5}).encode()
            self.send_plain(200, body, "application/json")
        else:
            self.send_plain(404, b"not found")

    def do_POST(self):
        if self.path != "/invocations":
            self.send_plain(404, b"not found")
            return
        with _lock:
            _inflight[0] += 1
            _inflight[1] = max(_inflight)
        try:
            self.invocation()
        finally:
            with _lock:
                _inflight[0] -= 1

    def invocation(self):
        a = self.attrs()
        mode = a.get("mode", os.environ.get("TEST_MODE", "echo"))
        if os.environ.get("TEST_SLEEP_MS"):
            time.sleep(int(os.environ["TEST_SLEEP_MS"]) / 1000.0)
        barrier_met = None
        if os.environ.get("TEST_BARRIER"):
            barrier_met = barrier(int(os.environ["TEST_BARRIER"]))
        if mode == "duplex":
            # Answer each request line as soon as it arrives.
            self.start_chunked()
            buf = b""
            for data in self.body_chunks():
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self.chunk(b"got:" + line + b"\n")
            self.end_chunked()
            return
        if mode == "lines":
            # duplex's transform ("got:" + line), answered once per read
            # rather than once per line: fast enough for a 1 GB body, and
            # never more than one read plus one partial line in memory.
            self.start_chunked()
            rest = b""
            for data in self.body_chunks(1 << 20):
                data = rest + data
                end = data.rfind(b"\n") + 1
                rest = data[end:]
                if end:
                    self.chunk(b"got:" + data[:end - 1].replace(b"\n", b"\ngot:") + b"\n")
            self.end_chunked()
            return
        body = b"".join(self.body_chunks())
        if mode == "echo":
            self.send_plain(200, body, self.headers.get("Content-Type", "application/octet-stream"),
                            {"X-Amzn-SageMaker-Custom-Attributes": "echoed=%d" % len(body)})
        elif mode == "stream":
            # Chunk i+1 is sent only after the file <gate>.<i> exists.
            n, gate = int(a.get("chunks", "3")), a.get("gate")
            self.start_chunked("application/x-ndjson")
            for i in range(n):
                if i > 0 and gate:
                    wait_for("%s.%d" % (gate, i))
                self.chunk(b"chunk %d\n" % i)
            self.end_chunked()
        elif mode == "hold":
            # Headers and one chunk, then wait (for a crash, usually).
            self.start_chunked()
            self.chunk(b"held\n")
            wait_for(a.get("gate", "/nonexistent/never"))
            self.end_chunked()
        elif mode == "wait":
            # Say the request arrived (<gate>.arrived), then answer only
            # once gate exists: a request in flight with no answer yet.
            gate = a.get("gate", "/nonexistent/never")
            open(gate + ".arrived", "w").close()
            wait_for(gate)
            self.send_plain(200, b"waited")
        elif mode == "status":
            code = int(a.get("code", "500"))
            self.send_plain(code, b"fixture failure %d: " % code + b"x" * int(a.get("pad", "0")))
        elif mode == "alloc":
            # Hold mb megabytes (touched, so resident) until gate exists.
            hog = bytearray(int(a.get("mb", "100")) << 20)
            for i in range(0, len(hog), 4096):
                hog[i] = 1
            wait_for(a.get("gate", "/nonexistent/never"))
            self.send_plain(200, b"survived %d" % len(hog))
        elif mode == "crash":
            sys.stderr.write("fixture: crashing on purpose\n")
            sys.stderr.flush()
            os._exit(13)
        elif mode == "env":
            base = os.environ.get("SAGEMAKER_BASE_DIR", "")
            try:
                with open(os.path.join(base, "model", "weights.txt")) as f:
                    weights = f.read()
            except OSError as e:
                weights = "error: %s" % e
            keys = ["SAGEMAKER_BIND_TO_PORT", "SAGEMAKER_SAFE_PORT_RANGE", "SAGEMAKER_BASE_DIR",
                    "SM_MODEL_DIR", "MY_VAR", "PATH", "OMP_NUM_THREADS", "SECRET_FROM_PARENT",
                    "SAGEMAKER_BATCH", "SAGEMAKER_MAX_PAYLOAD_IN_MB", "SAGEMAKER_BATCH_STRATEGY",
                    "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"]
            out = {
                "env": {k: os.environ.get(k) for k in keys},
                "argv": sys.argv[1:],
                "pid": os.getpid(),
                "cwd": os.getcwd(),
                "weights": weights,
                "body_bytes": len(body),
                "barrier_met": barrier_met,
                "headers": {k: self.headers.get(k) for k in
                            ["Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes",
                             "X-Amzn-SageMaker-Inference-Id", "Content-Length", "Transfer-Encoding"]},
            }
            self.send_plain(200, json.dumps(out).encode(), "application/json")
        else:
            self.send_plain(400, b"unknown mode " + mode.encode())


def main():
    if sys.argv[1:] != ["serve"]:
        sys.stderr.write("fixture: expected the single argument 'serve', got %r\n" % sys.argv[1:])
        sys.exit(2)
    flag = os.environ.get("TEST_FAIL_START_IF")
    if flag and os.path.exists(flag):
        sys.stderr.write("fixture: %s exists, failing start\n" % flag)
        with open(flag + ".failed", "a") as f:
            f.write("%d\n" % os.getpid())
        sys.exit(4)
    code = os.environ.get("TEST_EXIT_AT_START")
    if code:
        print("fixture: starting")
        sys.stderr.write("fixture: cannot load model (on purpose)\n")
        sys.exit(int(code))
    if os.environ.get("TEST_IGNORE_SIGTERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.environ.get("TEST_SPAWN_CHILD"):
        p = subprocess.Popen(["/bin/sleep", "1000"])
        with open("grandchild.pid", "w") as f:
            f.write(str(p.pid))
    port = int(os.environ["SAGEMAKER_BIND_TO_PORT"])
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    print("fixture: listening on 127.0.0.1:%d" % port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
