package async

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/hosting"
	"github.com/inferbox/inferbox/internal/objstore"
	"github.com/inferbox/inferbox/internal/queue"
	"github.com/inferbox/inferbox/internal/runtime"
)

// worker pulls one async endpoint's requests. It runs as many slots as
// the endpoint's variants can run invocations at once at their maximum
// size (MaxConcurrentInvocationsPerInstance × instances), re-reading that
// every Config.CapacityPoll as the autoscaler changes it, in both
// directions; each slot takes one request at a time, so the queue is
// drained only as fast as instances have room, and the elastic pool grows
// from zero as slots hand it work.
//
// A slot that capacity no longer covers is retired: it stops waiting for
// the next request at once, and a request it is running finishes first
// (it is not abandoned to the queue).
type worker struct {
	s        *Service
	endpoint string
	running  atomic.Int64 // slot goroutines alive, for Slots and metrics
}

const maxSlots = 1024

func (w *worker) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	var retire []context.CancelFunc // one per wanted slot, newest last
	tick := time.NewTicker(w.s.cfg.CapacityPoll)
	defer tick.Stop()
	for {
		if ep, err := w.s.hosting.AsyncEndpoint(ctx, w.endpoint); err == nil {
			want := max(min(ep.Capacity, maxSlots), 0)
			for len(retire) < want {
				sctx, cancel := context.WithCancel(ctx)
				retire = append(retire, cancel)
				w.running.Add(1)
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer w.running.Add(-1)
					w.slot(ctx, sctx)
				}()
			}
			for len(retire) > want {
				retire[len(retire)-1]()
				retire = retire[:len(retire)-1]
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// slot takes requests one at a time until retired (slotCtx ends) or the
// worker stops (ctx ends). Retiring cancels the slot's pull (the queue
// hands back a message that pull still brings), not a request it is
// running: that runs under ctx to its end.
func (w *worker) slot(ctx, slotCtx context.Context) {
	topic := topicOf(w.endpoint)
	for slotCtx.Err() == nil {
		d, err := w.s.q.Next(slotCtx, topic)
		if err != nil {
			if slotCtx.Err() != nil || errors.Is(err, queue.ErrClosed) {
				return
			}
			w.s.log.Warn("queue", "endpoint", w.endpoint, "err", err)
			select {
			case <-slotCtx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		w.handle(ctx, d)
	}
}

// outcome is why an attempt did not produce an output.
type outcome struct {
	reason    string // for the failure object and the notification
	permanent bool   // fail now rather than retry
}

func (o *outcome) Error() string { return o.reason }

// handle runs one delivery to its end: output, retry, or failure.
func (w *worker) handle(ctx context.Context, d queue.Delivery) {
	var r Request
	if err := json.Unmarshal(d.Body(), &r); err != nil {
		w.s.log.Error("dropping an unreadable queued request", "id", d.ID(), "err", err)
		_ = d.Ack(ctx)
		return
	}
	fin := finishCtx(ctx)
	defer fin.cancel()
	// A request delivered before may have finished without its ack
	// reaching the queue; so may one stored before this process started
	// (a restart resets delivery counts). Either finds its output or
	// failure object and only notifies again.
	if (d.Attempt() > 1 || d.Enqueued().Before(w.s.started)) && w.finishedBefore(fin.ctx, &r) {
		// A previous attempt wrote its object and stopped before the ack.
		_ = d.Ack(fin.ctx)
		return
	}
	if d.Exhausted() {
		w.fail(fin.ctx, d, &r, fmt.Sprintf("The request was delivered %d times without completing (the server stopped or the model crashed during each attempt).", d.Attempt()-1))
		return
	}
	if waited := w.s.cfg.Now().Sub(r.Received); waited > r.TTL {
		w.s.metrics.expired(r.Endpoint)
		w.fail(fin.ctx, d, &r, fmt.Sprintf("Request expired: it waited %s in the queue, longer than its RequestTTLSeconds of %d.", waited.Round(time.Second), int(r.TTL.Seconds())))
		return
	}
	stop := w.keepLease(ctx, d)
	inline, err := w.invoke(ctx, &r)
	stop()
	if err == nil {
		// The notification goes into the outbox before the ack: a crash
		// between the two redelivers the request, which finds its output
		// and notifies again (at least once), never zero times.
		w.s.finished(fin.ctx, &r, StatusCompleted, "")
		w.s.notify(fin.ctx, &r, true, "", inline)
		if err := d.Ack(fin.ctx); err != nil {
			w.s.log.Warn("ack", "id", r.InferenceID, "err", err)
		}
		w.s.metrics.processed(r.Endpoint)
		return
	}
	if ctx.Err() != nil {
		// Shutting down: hand it back for the next start.
		_ = d.Nack(fin.ctx, 0)
		return
	}
	var o *outcome
	if !errors.As(err, &o) {
		o = &outcome{reason: err.Error()}
	}
	if !o.permanent && d.Attempt() < w.s.cfg.MaxDeliver {
		delay := w.s.cfg.RetryDelay << (d.Attempt() - 1)
		w.s.log.Info("async request failed; retrying", "endpoint", r.Endpoint, "id", r.InferenceID, "attempt", d.Attempt(), "delay", delay, "err", o.reason)
		_ = d.Nack(fin.ctx, delay)
		return
	}
	w.s.metrics.failed(r.Endpoint)
	w.fail(fin.ctx, d, &r, o.reason)
}

// finishCtx is for the writes that end a request (failure object, ack,
// notification): they complete even when shutdown cancels ctx.
type finCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func finishCtx(ctx context.Context) finCtx {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	return finCtx{c, cancel}
}

// finishedBefore reports whether the request's output or failure object
// exists, and resends its notification (at least once).
func (w *worker) finishedBefore(ctx context.Context, r *Request) bool {
	if _, err := w.s.objects.Head(ctx, r.OutputLocation); err == nil {
		w.s.finished(ctx, r, StatusCompleted, "")
		w.s.notify(ctx, r, true, "", nil)
		return true
	}
	if rc, _, err := w.s.objects.Open(ctx, r.FailureLocation, nil); err == nil {
		reason, _ := io.ReadAll(io.LimitReader(rc, MaxInlineResponse))
		_ = rc.Close()
		text := strings.TrimSuffix(string(reason), "\n")
		w.s.finished(ctx, r, StatusFailed, text)
		w.s.notify(ctx, r, false, text, nil)
		return true
	}
	return false
}

// keepLease extends the delivery's lease until the returned stop is called.
func (w *worker) keepLease(ctx context.Context, d queue.Delivery) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(w.s.cfg.LeaseRenew)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := d.InProgress(ctx); err != nil {
					w.s.log.Warn("extend lease", "id", d.ID(), "err", err)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// invoke streams the input through the model into the output object. It
// returns the response's first MaxInlineResponse bytes when a success
// notification asks for it and the response is no larger.
func (w *worker) invoke(ctx context.Context, r *Request) ([]byte, error) {
	ictx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	timedOut := func() bool { return ictx.Err() != nil && ctx.Err() == nil }
	var body io.Reader
	size := int64(len(r.Inline))
	if r.InputLocation != "" {
		rc, info, err := w.s.objects.Open(ictx, r.InputLocation, nil)
		if err != nil {
			if errors.Is(err, objstore.ErrNotFound) || errors.Is(err, objstore.ErrNoSuchBucket) || errors.Is(err, objstore.ErrInvalidKey) || errors.Is(err, objstore.ErrInvalidBucket) {
				return nil, &outcome{reason: fmt.Sprintf("Failed to download the input from %s: %v.", r.InputLocation, err), permanent: true}
			}
			return nil, fmt.Errorf("download input %s: %w", r.InputLocation, err)
		}
		defer rc.Close()
		body, size = rc, info.Size
	} else {
		body = bytes.NewReader(r.Inline)
	}
	iv, err := w.s.hosting.InvokeAsync(ictx, &hosting.InvokeInput{
		EndpointName: r.Endpoint, Caller: r.Caller, Received: time.Now(),
		Request: &runtime.Request{ContentType: r.ContentType, Accept: r.Accept, Body: body, Size: size, CustomAttributes: r.CustomAttributes, InferenceID: r.InferenceID},
	})
	if err != nil {
		switch {
		case timedOut():
			return nil, &outcome{reason: w.timeoutReason(r), permanent: true}
		case errGone(err):
			return nil, &outcome{reason: apierr.As(err).Message, permanent: true}
		}
		return nil, &outcome{reason: apierr.As(err).Message}
	}
	status := 200
	defer func() { iv.Finish(status) }()
	capture := &capped{limit: MaxInlineResponse}
	var src io.Reader = iv.Body
	if r.InlineSuccess {
		src = io.TeeReader(iv.Body, capture)
	}
	ct := iv.ContentType
	_, err = w.s.objects.Put(ictx, r.OutputLocation, src, objstore.PutOptions{ContentType: ct, Size: -1, Metadata: map[string]string{"inference-id": r.InferenceID}})
	if err != nil {
		status = 500
		if timedOut() {
			return nil, &outcome{reason: w.timeoutReason(r), permanent: true}
		}
		return nil, &outcome{reason: fmt.Sprintf("Failed to write the output to %s: %v", r.OutputLocation, err)}
	}
	if r.InlineSuccess && !capture.over {
		return capture.buf.Bytes(), nil
	}
	return nil, nil
}

func (w *worker) timeoutReason(r *Request) string {
	return fmt.Sprintf("Invocation timed out: the model did not finish within the request's InvocationTimeoutSeconds of %d.", int(r.Timeout.Seconds()))
}

// fail writes the failure object (the reason, as text), acks the request
// and sends the error notification. If the object cannot be written the
// request goes back to the queue, so its end is not lost to a passing
// storage error; but only until the request has used up its deliveries
// (the exhausted delivery after Config.MaxDeliver): then it is terminated
// in the queue, logged and counted as abandoned, and the error
// notification still goes out, so nothing is redelivered for ever.
func (w *worker) fail(ctx context.Context, d queue.Delivery, r *Request, reason string) {
	_, err := w.s.objects.Put(ctx, r.FailureLocation, strings.NewReader(reason+"\n"), objstore.PutOptions{ContentType: "text/plain", Size: int64(len(reason) + 1), Metadata: map[string]string{"inference-id": r.InferenceID}})
	if err != nil {
		if d.Exhausted() || d.Attempt() > w.s.cfg.MaxDeliver {
			w.abandon(ctx, d, r, reason, err)
			return
		}
		w.s.log.Error("write failure object; retrying", "endpoint", r.Endpoint, "id", r.InferenceID, "location", r.FailureLocation, "attempt", d.Attempt(), "err", err)
		_ = d.Nack(ctx, w.s.cfg.RetryDelay)
		return
	}
	w.s.log.Info("async request failed", "endpoint", r.Endpoint, "id", r.InferenceID, "reason", reason)
	w.s.finished(ctx, r, StatusFailed, reason)
	w.s.notify(ctx, r, false, reason, nil) // before the ack, as in handle
	if err := d.Ack(ctx); err != nil {
		w.s.log.Warn("ack", "id", r.InferenceID, "err", err)
	}
}

// abandon ends a request whose failure object cannot be written after its
// last delivery: the error notification (which says so) goes into the
// outbox, then the message is terminated so the queue drops it.
func (w *worker) abandon(ctx context.Context, d queue.Delivery, r *Request, reason string, putErr error) {
	w.s.metrics.abandoned(r.Endpoint)
	w.s.log.Error("async request abandoned: its failure object cannot be written",
		"endpoint", r.Endpoint, "id", r.InferenceID, "location", r.FailureLocation, "deliveries", d.Attempt(), "reason", reason, "err", putErr)
	full := fmt.Sprintf("%s (The failure object could not be written to %s: %v.)", reason, r.FailureLocation, putErr)
	w.s.finished(ctx, r, StatusFailed, full)
	w.s.notify(ctx, r, false, full, nil)
	if err := d.Term(ctx, "failure object not writable"); err != nil {
		w.s.log.Warn("term", "id", r.InferenceID, "err", err)
	}
}

// capped keeps the first limit bytes written and notes if there were more.
type capped struct {
	buf   bytes.Buffer
	limit int
	n     int
	over  bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.limit - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	c.n += len(p)
	c.over = c.n > c.limit
	return len(p), nil
}
