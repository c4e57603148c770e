package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/inferbox/inferbox/internal/runtime"
)

// Defaults for Loader's zero fields and for Spec.StartupTimeout.
const (
	DefaultStartupTimeout    = 4 * time.Minute
	DefaultStopTimeout       = 30 * time.Second
	DefaultRestartBackoff    = 100 * time.Millisecond
	DefaultMaxRestartBackoff = 30 * time.Second

	pingTimeout  = 2 * time.Second // SageMaker's per-attempt /ping timeout
	tailLines    = 50              // output lines kept for failure messages
	messageLines = 20              // of which a failure message shows this many
	maxErrorBody = 1024            // bytes of a non-2xx body kept as the message
)

// Loader starts model servers as child processes. The zero value is ready to
// use; its fields override defaults.
type Loader struct {
	// BaseDir holds each instance's base directory; default os.TempDir().
	BaseDir string
	// StopTimeout is how long Close waits after SIGTERM before SIGKILL.
	StopTimeout time.Duration
	// RestartBackoff is the wait before restarting a process that exited;
	// it doubles after each failed restart, up to MaxRestartBackoff, and is
	// reset when a restarted process answers /ping.
	RestartBackoff    time.Duration
	MaxRestartBackoff time.Duration

	// Health checks of a ready server (see health.go): GET /ping every
	// HealthInterval (default 10 s; negative: no checks) with a
	// HealthTimeout limit (default 2 s); after UnhealthyThreshold failures
	// in a row (default 3) the server is killed and replaced.
	HealthInterval     time.Duration
	HealthTimeout      time.Duration
	UnhealthyThreshold int
	// Unhealthy, if set, counts servers replaced for failing health checks.
	Unhealthy Counter
}

var _ runtime.Loader = (*Loader)(nil)

// Load starts spec.Command and waits until it answers GET /ping; see Start.
func (l *Loader) Load(ctx context.Context, spec runtime.Spec) (runtime.Model, error) {
	m, err := l.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Model is a running model server. Invoke may be called concurrently.
type Model struct {
	spec     runtime.Spec
	cfg      Loader // with defaults filled in
	startup  time.Duration
	logger   *slog.Logger
	base     string // per-instance SAGEMAKER_BASE_DIR
	modelDir string // absolute model directory (SM_MODEL_DIR)

	transport *http.Transport
	client    *http.Client
	tail      *ring

	stop     chan struct{} // closed by Close
	cancel   context.CancelFunc
	supDone  chan struct{} // closed when the supervisor has returned
	wg       sync.WaitGroup
	closeMu  sync.Mutex
	closed   bool
	closeErr error

	// mu guards the fields below. cur is the latest process started;
	// ready is closed once cur answers /ping and is replaced when cur exits.
	mu       sync.Mutex
	cur      *child
	ready    chan struct{}
	restarts int
}

var _ runtime.Model = (*Model)(nil)

// Start creates the instance's base directory, starts the server and waits
// until it answers GET /ping with 200, within spec.StartupTimeout (default
// 4 minutes) and ctx. If the process exits first or the time runs out, the
// error says which and quotes the last lines of its output. ctx bounds only
// the start; the process lives until Close.
func (l *Loader) Start(ctx context.Context, spec runtime.Spec) (*Model, error) {
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return nil, errors.New("process runtime: no command to start")
	}
	m := &Model{
		spec:    spec,
		cfg:     *l,
		startup: spec.StartupTimeout,
		logger:  spec.Logger,
		tail:    newRing(tailLines),
		stop:    make(chan struct{}),
		supDone: make(chan struct{}),
		ready:   make(chan struct{}),
	}
	if m.startup <= 0 {
		m.startup = DefaultStartupTimeout
	}
	if m.cfg.StopTimeout <= 0 {
		m.cfg.StopTimeout = DefaultStopTimeout
	}
	if m.cfg.RestartBackoff <= 0 {
		m.cfg.RestartBackoff = DefaultRestartBackoff
	}
	if m.cfg.MaxRestartBackoff < m.cfg.RestartBackoff {
		m.cfg.MaxRestartBackoff = max(DefaultMaxRestartBackoff, m.cfg.RestartBackoff)
	}
	if m.cfg.HealthInterval == 0 {
		m.cfg.HealthInterval = DefaultHealthInterval
	}
	if m.cfg.HealthTimeout <= 0 {
		m.cfg.HealthTimeout = DefaultHealthTimeout
	}
	if m.cfg.UnhealthyThreshold <= 0 {
		m.cfg.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	if m.logger == nil {
		m.logger = slog.New(slog.DiscardHandler)
	}
	m.logger = m.logger.With("component", "process")

	if err := m.makeBase(); err != nil {
		return nil, err
	}
	m.transport = &http.Transport{
		Proxy:       nil, // loopback only, never through a proxy
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		// Requests with a streamed body cannot be replayed, so a POST sent on
		// a connection the server has just closed as idle would fail. Keeping
		// idle connections shorter than common server keep-alives (gunicorn:
		// 2 s) avoids that; a new loopback connection is cheap.
		IdleConnTimeout:     time.Second,
		MaxIdleConns:        128,
		MaxIdleConnsPerHost: 128,
		DisableCompression:  true, // bodies pass through untouched
	}
	m.client = &http.Client{Transport: m.transport}

	c, err := m.startChild()
	if err != nil {
		m.cleanup()
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	m.mu.Lock()
	m.cur = c
	m.mu.Unlock()
	if err := m.waitReady(ctx, c); err != nil {
		terminate(c, 0)
		m.wg.Wait()
		m.cleanup()
		return nil, fmt.Errorf("process runtime: %s: %w", m.describe(), err)
	}
	m.markReady(c)
	m.logger.Info("model server ready", "pid", c.pid)

	life, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.startHealth(life, c)
	go m.supervise(life, c)
	return m, nil
}

// makeBase creates the per-instance base directory with model -> ModelDir.
func (m *Model) makeBase() error {
	base, err := os.MkdirTemp(m.cfg.BaseDir, "inferbox-model-")
	if err != nil {
		return fmt.Errorf("process runtime: create base directory: %w", err)
	}
	m.base = base
	link := filepath.Join(base, "model")
	if m.spec.ModelDir == "" {
		m.modelDir = link
		err = os.Mkdir(link, 0o755)
	} else {
		m.modelDir, err = filepath.Abs(m.spec.ModelDir)
		if err == nil {
			err = os.Symlink(m.modelDir, link)
		}
	}
	if err != nil {
		os.RemoveAll(base)
		return fmt.Errorf("process runtime: prepare model directory: %w", err)
	}
	return nil
}

func (m *Model) cleanup() {
	if m.transport != nil {
		m.transport.CloseIdleConnections()
	}
	if err := os.RemoveAll(m.base); err != nil {
		m.logger.Warn("removing base directory", "dir", m.base, "err", err)
	}
}

// describe names the server in messages: the image the user gave, or the command.
func (m *Model) describe() string {
	if m.spec.Image != "" {
		return fmt.Sprintf("model server %q", m.spec.Image)
	}
	return fmt.Sprintf("model server %q", m.spec.Command[0])
}

// waitReady polls GET /ping until it answers 200. The error says whether the
// process exited or the startup timeout passed, and quotes its last output.
func (m *Model) waitReady(ctx context.Context, c *child) error {
	deadline := time.NewTimer(m.startup)
	defer deadline.Stop()
	// Start at 5 ms and grow by half each time, to at most 500 ms: a cold
	// start waits on this (doubling from 20 ms noticed a 60 ms server only
	// at 140 ms), and a server that logs each /ping sees few of them.
	backoff := 5 * time.Millisecond
	last := "no answer yet"
	for {
		code, err := m.ping(ctx, c, pingTimeout)
		switch {
		case err == nil && code == http.StatusOK:
			return nil
		case err != nil:
			last = err.Error()
		default:
			last = fmt.Sprintf("status %d", code)
		}
		wait := time.NewTimer(backoff)
		select {
		case <-c.done:
			wait.Stop()
			m.awaitLogs(c)
			return fmt.Errorf("process exited before it answered GET /ping (%s)%s", c.exitStatus(), m.tailText())
		case <-ctx.Done():
			wait.Stop()
			return ctx.Err()
		case <-deadline.C:
			wait.Stop()
			return fmt.Errorf("no 200 answer to GET /ping within %s (last attempt: %s)%s", m.startup, last, m.tailText())
		case <-wait.C:
		}
		backoff = min(backoff*3/2, 500*time.Millisecond)
	}
}

// awaitLogs waits briefly for an exited process's output to be read, so
// failure messages include its last lines.
func (m *Model) awaitLogs(c *child) {
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case <-c.logsDone:
	case <-t.C:
	}
}

func (m *Model) tailText() string {
	lines := m.tail.last(messageLines)
	if len(lines) == 0 {
		return "; it wrote no output"
	}
	return "; last output:\n" + strings.Join(lines, "\n")
}

// ping sends GET /ping to c and returns the status, within timeout.
func (m *Model) ping(ctx context.Context, c *child, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+"/ping", nil)
	if err != nil {
		return 0, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// supervise restarts the server whenever it exits, until ctx is cancelled.
func (m *Model) supervise(ctx context.Context, c *child) {
	defer close(m.supDone)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.done:
		}
		m.awaitLogs(c)
		m.transport.CloseIdleConnections()
		m.logger.Warn("model server exited; restarting", "pid", c.pid, "exit", c.exitStatus())

		backoff := m.cfg.RestartBackoff
		for {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, m.cfg.MaxRestartBackoff)
			m.mu.Lock()
			m.restarts++
			m.mu.Unlock()
			nc, err := m.startChild()
			if err != nil {
				m.logger.Error("restarting model server", "err", err)
				continue
			}
			m.mu.Lock()
			m.cur = nc
			m.mu.Unlock()
			if err := m.waitReady(ctx, nc); err != nil {
				if ctx.Err() != nil {
					return // Close stops nc
				}
				m.logger.Error("restarted model server did not become ready", "pid", nc.pid, "err", err)
				terminate(nc, 0)
				continue
			}
			m.markReady(nc)
			m.logger.Info("model server ready again", "pid", nc.pid)
			m.startHealth(ctx, nc)
			c = nc
			break
		}
	}
}

// exiting is called when c has exited, before c.done is closed: once anyone
// can see that c is gone, Invokes already wait for its successor.
func (m *Model) exiting(c *child) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c.gone = true
	if m.cur != c {
		return
	}
	m.unreadyLocked()
}

// unreadyLocked makes new Invokes wait for the next ready process.
func (m *Model) unreadyLocked() {
	select {
	case <-m.ready:
		m.ready = make(chan struct{})
	default:
	}
}

// Ready reports whether the server answers invocations now: false while it
// is being restarted or replaced (Invokes then wait for it) and after Close.
// A pool routes around instances that are not ready.
func (m *Model) Ready() bool {
	select {
	case <-m.stop:
		return false
	default:
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.ready:
		return true
	default:
		return false
	}
}

// markReady lets Invokes use c, unless it has already exited (it answered
// /ping and died at once: the supervisor restarts it).
func (m *Model) markReady(c *child) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !c.gone {
		close(m.ready)
	}
}

// Restarts returns how many times the server has been restarted after
// exiting (each attempt counts, successful or not).
func (m *Model) Restarts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.restarts
}

// errClosed is returned by calls made after Close.
var errClosed = errors.New("process runtime: model is closed")

// target waits until a process is ready and returns it.
func (m *Model) target(ctx context.Context) (*child, error) {
	for {
		select {
		case <-m.stop:
			return nil, errClosed
		default:
		}
		m.mu.Lock()
		ready, c := m.ready, m.cur
		m.mu.Unlock()
		select {
		case <-ready:
			return c, nil
		default:
		}
		select {
		case <-ready:
			// Loop: read cur again under the lock.
		case <-m.stop:
			return nil, errClosed
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the model server to restart: %w", ctx.Err())
		}
	}
}

// Invoke sends POST /invocations. The request body streams from req.Body
// (with Content-Length when req.Size >= 0, chunked otherwise); Invoke returns
// as soon as the response headers arrive and Response.Body is the live
// response body. ctx covers the whole exchange, including reading the body.
func (m *Model) Invoke(ctx context.Context, req *runtime.Request) (*runtime.Response, error) {
	c, err := m.target(ctx)
	if err != nil {
		return nil, err
	}
	var body io.Reader = http.NoBody
	size := int64(0)
	if req.Body != nil && req.Size != 0 {
		// NopCloser: the caller owns req.Body; the transport must not close it.
		body, size = io.NopCloser(req.Body), req.Size
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+"/invocations", body)
	if err != nil {
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	hreq.ContentLength = size // -1: chunked
	setHeader(hreq.Header, "Content-Type", req.ContentType)
	setHeader(hreq.Header, "Accept", req.Accept)
	setHeader(hreq.Header, "X-Amzn-SageMaker-Custom-Attributes", req.CustomAttributes)
	setHeader(hreq.Header, "X-Amzn-SageMaker-Inference-Id", req.InferenceID)

	resp, err := m.client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("invoke model server: %w", ctx.Err())
		}
		return nil, m.connError(c, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		// Drain a little more so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024))
		text := strings.TrimSpace(strings.ToValidUTF8(string(msg), "\uFFFD"))
		if text == "" {
			text = http.StatusText(resp.StatusCode)
		}
		return nil, &runtime.ModelError{StatusCode: resp.StatusCode, Message: text}
	}
	return &runtime.Response{
		ContentType:      resp.Header.Get("Content-Type"),
		CustomAttributes: resp.Header.Get("X-Amzn-SageMaker-Custom-Attributes"),
		Body:             &liveBody{rc: resp.Body, m: m, c: c},
	}, nil
}

func setHeader(h http.Header, k, v string) {
	if v != "" {
		h.Set(k, v)
	}
}

// connError turns a failed exchange into a ModelError with StatusCode 0:
// the model gave no answer at all (runtime.ModelError's convention), which
// is different from a server that answered 500. The message says whether
// the process died, which is what the user needs to look for in its logs.
func (m *Model) connError(c *child, err error) error {
	// A dying process closes its sockets a moment before it is reaped;
	// wait briefly so the message can say it exited.
	t := time.NewTimer(250 * time.Millisecond)
	defer t.Stop()
	select {
	case <-c.done:
		m.mu.Lock()
		why := c.killedFor
		m.mu.Unlock()
		if why != "" {
			return &runtime.ModelError{Message: "the instance was stopped during the request: " + why}
		}
		return &runtime.ModelError{Message: fmt.Sprintf("model server process exited during the request (%s)", c.exitStatus())}
	case <-t.C:
	}
	return &runtime.ModelError{Message: fmt.Sprintf("model server did not answer: %v", err)}
}

// liveBody is a response body whose transport failures are ModelErrors.
type liveBody struct {
	rc io.ReadCloser
	m  *Model
	c  *child
}

func (b *liveBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		err = b.m.connError(b.c, err)
	}
	return n, err
}

func (b *liveBody) Close() error { return b.rc.Close() }

// ExecutionParameters is the answer to GET /execution-parameters, which
// batch transform reads before it sends records.
type ExecutionParameters struct {
	MaxConcurrentTransforms int    `json:"MaxConcurrentTransforms,omitempty"`
	BatchStrategy           string `json:"BatchStrategy,omitempty"`
	MaxPayloadInMB          int    `json:"MaxPayloadInMB,omitempty"`
}

// ExecutionParameters asks the server for its preferred batch settings.
// ok is false when the server does not implement the route (404 or 405).
func (m *Model) ExecutionParameters(ctx context.Context) (params ExecutionParameters, ok bool, err error) {
	c, err := m.target(ctx)
	if err != nil {
		return params, false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+"/execution-parameters", nil)
	if err != nil {
		return params, false, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return params, false, fmt.Errorf("GET /execution-parameters: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return params, false, nil
	case resp.StatusCode != http.StatusOK:
		return params, false, fmt.Errorf("GET /execution-parameters: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64*1024)).Decode(&params); err != nil {
		return params, false, fmt.Errorf("GET /execution-parameters: %w", err)
	}
	return params, true, nil
}

// Close stops the server: SIGTERM to its process group, SIGKILL after
// Loader.StopTimeout. It waits for every goroutine the model started and
// removes the base directory. Close is idempotent; later calls return the
// first call's result.
func (m *Model) Close() error {
	m.closeMu.Lock()
	defer m.closeMu.Unlock()
	if m.closed {
		return m.closeErr
	}
	m.closed = true
	// Order: stop new work and the supervisor first, so nothing restarts
	// the process; then stop the process; then wait for the output readers
	// and exit watchers; then remove files.
	close(m.stop)
	m.cancel()
	<-m.supDone
	m.mu.Lock()
	c := m.cur
	m.mu.Unlock()
	terminate(c, m.cfg.StopTimeout)
	m.logger.Info("model server stopped", "pid", c.pid, "exit", c.exitStatus())
	m.wg.Wait()
	m.cleanup()
	return m.closeErr
}
