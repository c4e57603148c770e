package process

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Health checks after start-up, as SageMaker does for a running instance:
// while a server is ready, GET /ping is sent every Loader.HealthInterval
// with a Loader.HealthTimeout limit. After Loader.UnhealthyThreshold
// failures in a row (no answer in time, or a status other than 200) the
// server is declared unhealthy: new Invokes stop going to it (they wait for
// its successor, and a pool routes them to other instances), it gets
// SIGTERM and, HealthTimeout later, SIGKILL; the requests in flight on it
// fail with a *runtime.ModelError that says why, and the supervisor starts a
// replacement, which must pass GET /ping again before it serves. A passing
// check resets the count. A process that is stopped (SIGSTOP) or deadlocked
// exists but answers nothing; without this it would hold requests until
// their own timeouts, forever.
const (
	DefaultHealthInterval     = 10 * time.Second
	DefaultHealthTimeout      = pingTimeout
	DefaultUnhealthyThreshold = 3
)

// Counter counts events; a Prometheus counter is one.
type Counter interface{ Inc() }

// healthCount decides when a ready server is unhealthy: after threshold
// consecutive failed checks. A passing check resets the count.
type healthCount struct {
	threshold int
	failed    int
}

// observe records one check and reports whether the server is now unhealthy.
func (h *healthCount) observe(ok bool) bool {
	if ok {
		h.failed = 0
		return false
	}
	h.failed++
	return h.failed >= h.threshold
}

// watchHealth checks c while it runs, from when it is ready until it exits
// or ctx (the model's life) ends, and replaces it once it is unhealthy.
func (m *Model) watchHealth(ctx context.Context, c *child) {
	t := time.NewTicker(m.cfg.HealthInterval)
	defer t.Stop()
	h := healthCount{threshold: m.cfg.UnhealthyThreshold}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.done:
			return
		case <-t.C:
		}
		code, err := m.ping(ctx, c, m.cfg.HealthTimeout)
		if ctx.Err() != nil || c.exited() {
			return // Close or an exit: not the health check's business
		}
		ok := err == nil && code == http.StatusOK
		was := h.failed
		if !h.observe(ok) {
			switch {
			case !ok:
				m.logger.Warn("model server failed a health check", "pid", c.pid, "failures", h.failed, "threshold", h.threshold, "err", pingFailure(code, err))
			case was > 0:
				m.logger.Info("model server passed a health check again", "pid", c.pid, "after_failures", was)
			}
			continue
		}
		m.replaceUnhealthy(c, fmt.Sprintf("it failed %d health checks in a row (GET /ping every %s, %s timeout; last: %s)",
			h.failed, m.cfg.HealthInterval, m.cfg.HealthTimeout, pingFailure(code, err)))
		return
	}
}

func pingFailure(code int, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("status %d", code)
}

// replaceUnhealthy takes c out of service and stops it; the supervisor
// starts its successor once it has exited.
func (m *Model) replaceUnhealthy(c *child, why string) {
	m.mu.Lock()
	if c.gone {
		m.mu.Unlock()
		return
	}
	c.killedFor = why
	if m.cur == c {
		m.unreadyLocked()
	}
	m.mu.Unlock()
	m.logger.Error("model server is unhealthy; replacing it", "pid", c.pid, "reason", why)
	if m.cfg.Unhealthy != nil {
		m.cfg.Unhealthy.Inc()
	}
	terminate(c, m.cfg.HealthTimeout)
}

// startHealth starts c's health checker, unless checks are off.
func (m *Model) startHealth(ctx context.Context, c *child) {
	if m.cfg.HealthInterval < 0 {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.watchHealth(ctx, c)
	}()
}
