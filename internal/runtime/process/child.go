package process

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is one run of the model server process. A restart makes a new child.
type child struct {
	cmd     *exec.Cmd
	pid     int
	baseURL string // http://127.0.0.1:<port>

	done    chan struct{} // closed when the process has exited and been reaped
	exitErr error         // set before done is closed

	logsDone chan struct{} // closed when stdout and stderr reached EOF

	gone bool // guarded by Model.mu: the process has exited
	// killedFor says why inferbox killed the process (over its memory
	// size, failed health checks); guarded by Model.mu.
	killedFor string
}

// exited reports whether the process has exited, without blocking.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// exitStatus describes how the process ended; call after done is closed.
func (c *child) exitStatus() string {
	if c.exitErr == nil {
		return "exit status 0"
	}
	return c.exitErr.Error()
}

// basicEnv lists the variables inherited from inferbox's environment.
var basicEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"}

// childEnv builds the child's environment; see the package doc for the order.
func childEnv(base, modelDir string, port, threads int, user map[string]string) []string {
	env := map[string]string{}
	for _, k := range basicEnv {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	if threads > 0 {
		env["OMP_NUM_THREADS"] = strconv.Itoa(threads)
	}
	for k, v := range user {
		env[k] = v
	}
	env["SAGEMAKER_BIND_TO_PORT"] = strconv.Itoa(port)
	env["SAGEMAKER_SAFE_PORT_RANGE"] = fmt.Sprintf("%d-%d", port+1, port+10)
	env["SAGEMAKER_BASE_DIR"] = base
	env["SM_MODEL_DIR"] = modelDir
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// freePort asks the kernel for a free loopback port. The port is released
// before the child binds it, so another program could take it in between;
// the child then fails to bind, exits, and is restarted on a new port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

// startChild starts one run of the server. Its output goes to logger and to
// tail; the goroutines it starts are counted in wg and end when the process
// (and every process that inherited its output) has exited.
func (m *Model) startChild() (*child, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := append(append([]string{}, m.spec.Command[1:]...), "serve")
	cmd := exec.Command(m.spec.Command[0], args...)
	cmd.Dir = m.base
	cmd.Env = childEnv(m.base, m.modelDir, port, m.spec.Threads, m.spec.Environment)
	// Pdeathsig: a model server must not outlive inferbox, even after a
	// kill -9 that gives inferbox no chance to stop it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	// Our own pipes rather than cmd.StdoutPipe: Wait must not race with the
	// readers, and the readers must see the output of the process's own
	// children too (they end at EOF, when every writer is gone).
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", m.spec.Command[0], err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("start %s: %w", m.spec.Command[0], err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start %s: %w", m.spec.Command[0], err)
	}

	c := &child{
		cmd:      cmd,
		pid:      cmd.Process.Pid,
		baseURL:  "http://127.0.0.1:" + strconv.Itoa(port),
		done:     make(chan struct{}),
		logsDone: make(chan struct{}),
	}
	log := m.logger.With("pid", c.pid)
	log.Info("model server started", "command", m.spec.Command[0], "port", port)

	if limit := m.spec.MemoryBytes; limit > 0 {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.watchMemory(c, limit)
		}()
	}
	var logs sync.WaitGroup
	logs.Add(2)
	m.wg.Add(3)
	go func() {
		defer m.wg.Done()
		defer logs.Done()
		m.pump(outR, log, slog.LevelInfo, "stdout")
	}()
	go func() {
		defer m.wg.Done()
		defer logs.Done()
		m.pump(errR, log, slog.LevelWarn, "stderr")
	}()
	go func() {
		defer m.wg.Done()
		c.exitErr = cmd.Wait()
		// Processes the server started may outlive it; they belong to the
		// group, so they go too. The group id stays reserved while any
		// member lives, so this cannot hit an unrelated process.
		_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		m.exiting(c)
		close(c.done)
		// A process that left the group (setsid) may still hold the pipes;
		// stop reading after a grace period rather than wait for it forever.
		logsRead := make(chan struct{})
		go func() { logs.Wait(); close(logsRead) }()
		t := time.NewTimer(5 * time.Second)
		select {
		case <-logsRead:
			t.Stop()
		case <-t.C:
			log.Warn("model server output still open after exit; no longer reading it")
			outR.Close()
			errR.Close()
			<-logsRead
		}
		close(c.logsDone)
	}()
	return c, nil
}

// pump copies one output stream into the log and the tail, line by line.
// Lines longer than maxLine are cut; the rest of such a line is dropped.
func (m *Model) pump(r *os.File, log *slog.Logger, level slog.Level, stream string) {
	defer r.Close()
	const maxLine = 4096
	br := bufio.NewReaderSize(r, 64*1024)
	var line []byte
	for {
		frag, isPrefix, err := br.ReadLine()
		if len(line) < maxLine {
			line = append(line, frag[:min(len(frag), maxLine-len(line))]...)
		}
		if err != nil {
			if len(line) > 0 {
				m.emit(log, level, stream, string(line))
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				log.Warn("reading model server output", "stream", stream, "err", err)
			}
			return
		}
		if !isPrefix {
			m.emit(log, level, stream, string(line))
			line = line[:0]
		}
	}
}

func (m *Model) emit(log *slog.Logger, level slog.Level, stream, line string) {
	line = strings.TrimRight(line, "\r")
	m.tail.add(line)
	if level >= slog.LevelWarn {
		log.Warn(line, "stream", stream)
	} else {
		log.Info(line, "stream", stream)
	}
}

// terminate stops c's process group: SIGTERM, then SIGKILL after grace.
// It returns when the process has been reaped.
func terminate(c *child, grace time.Duration) {
	if c.exited() {
		return
	}
	_ = syscall.Kill(-c.pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		return
	case <-t.C:
	}
	_ = syscall.Kill(-c.pid, syscall.SIGKILL)
	<-c.done
}

// ring keeps the last lines of output for failure messages.
type ring struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
}

func newRing(n int) *ring { return &ring{lines: make([]string, n)} }

func (r *ring) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines[r.next] = s
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
}

// last returns up to n of the most recent lines, oldest first.
func (r *ring) last(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []string
	if r.full {
		all = append(all, r.lines[r.next:]...)
	}
	all = append(all, r.lines[:r.next]...)
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}
