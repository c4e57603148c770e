// Package process runs a model server as a child process that speaks the
// SageMaker inference container contract, and presents it as a
// runtime.Model. It owns the child's life: start, health check, log capture,
// supervision with restarts, and shutdown of the whole process group.
//
// # How the container contract maps onto a process
//
// SageMaker starts a container with `docker run <image> serve`. Here the
// command is Spec.Command with the extra argument "serve" appended.
//
// The environment is small and explicit, in this order (later wins):
//
//   - a few basics from inferbox's own environment: PATH, HOME, USER, LOGNAME,
//     LANG, LC_ALL, LC_CTYPE, TZ, TMPDIR;
//   - OMP_NUM_THREADS=<Spec.Threads>, when Threads > 0;
//   - Spec.Environment (CreateModel's Environment);
//   - SAGEMAKER_BIND_TO_PORT=<a free loopback port>;
//   - SAGEMAKER_SAFE_PORT_RANGE=<port+1>-<port+10> (a hint only: those ports
//     are not reserved);
//   - SAGEMAKER_BASE_DIR=<base> and SM_MODEL_DIR=<Spec.ModelDir>.
//
// SageMaker unpacks the model into /opt/ml/model. That path is shared by the
// whole machine, so each instance gets its own base directory instead (under
// Loader.BaseDir, default os.TempDir()): <base>/model is a symlink to
// Spec.ModelDir (an empty directory when the model has no artifact). The
// SageMaker inference toolkit derives its model directory from
// SAGEMAKER_BASE_DIR (base + "/model"); other servers can read SM_MODEL_DIR.
// The process starts with <base> as its working directory. The base
// directory is removed on Close.
//
// A server must listen on SAGEMAKER_BIND_TO_PORT (the standard variable; a
// server that ignores it and listens on 8080 never passes the health check)
// and should bind 127.0.0.1 only: there is no standard variable for the bind
// address, and inferbox only ever connects over loopback. A server that
// writes a response's headers and body in separate small writes should set
// TCP_NODELAY (Python's http.server: disable_nagle_algorithm = True):
// otherwise Nagle's algorithm and the client's delayed ACK hold every answer
// back about 40 ms (measured: 44 ms against 0.17 ms per request).
//
// # Health, invocations, supervision
//
// Load polls GET /ping (2 s per attempt, as SageMaker does) until it answers
// 200, within Spec.StartupTimeout (default 4 minutes). Invoke sends POST
// /invocations and streams both bodies. If the process exits after it became
// ready, the requests in flight fail with a *runtime.ModelError, the process
// is restarted (new port, backoff between failed attempts) and new Invokes
// wait, bounded by their context, until it answers /ping again. Close sends
// SIGTERM to the process group, waits Loader.StopTimeout (default 30 s) and
// then sends SIGKILL.
//
// Once ready, the server is health-checked as SageMaker checks a running
// instance: GET /ping every Loader.HealthInterval (default 10 s), each
// attempt limited to Loader.HealthTimeout (default 2 s). After
// Loader.UnhealthyThreshold failures in a row (default 3; a 200 resets the
// count) the server is taken out of service (Ready reports false, new
// Invokes wait for its successor), sent SIGTERM and, HealthTimeout later,
// SIGKILL; the requests in flight on it fail with a *runtime.ModelError
// naming the failed checks, and it is restarted as after a crash. This is
// what replaces a server that hangs (deadlocked, stopped with SIGSTOP)
// rather than exits.
//
// The child's stdout and stderr are logged line by line (info and warn) and
// the last lines are kept for failure messages. Payloads are never logged.
//
// process imports only internal/runtime from inferbox; it must not import
// pool, modes or adapters. It is Unix-only (process groups).
package process
