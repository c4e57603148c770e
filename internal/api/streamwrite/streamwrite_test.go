package streamwrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// gate is a client the test controls: each Write is reported on entered
// and returns only when the test sends on release.
type gate struct {
	entered chan []byte
	release chan error
}

func newGate() *gate { return &gate{entered: make(chan []byte), release: make(chan error)} }

func (g *gate) Write(p []byte) (int, error) {
	g.entered <- bytes.Clone(p)
	if err := <-g.release; err != nil {
		return 0, err
	}
	return len(p), nil
}

func text(s string) func(*bytes.Buffer) error {
	return func(b *bytes.Buffer) error { b.WriteString(s); return nil }
}

func recv(t *testing.T, g *gate) string {
	t.Helper()
	select {
	case p := <-g.entered:
		return string(p)
	case <-time.After(10 * time.Second):
		t.Fatal("no write reached the client")
		return ""
	}
}

// An idle stream writes each event at once, on its own; events that pile
// up while a write is in flight go out together, in order, in one write.
func TestImmediateWhenIdleCoalescedWhenBehind(t *testing.T) {
	g := newGate()
	s := New(context.Background(), g, 0)
	if err := s.Event(text("e1;")); err != nil {
		t.Fatal(err)
	}
	// e1 reaches the client without any later event.
	if got := recv(t, g); got != "e1;" {
		t.Fatalf("first write %q, want e1;", got)
	}
	// The client is slow: e1's write is still in flight.
	var want strings.Builder
	for i := 2; i <= 10; i++ {
		ev := fmt.Sprintf("e%d;", i)
		want.WriteString(ev)
		if err := s.Event(text(ev)); err != nil {
			t.Fatal(err)
		}
	}
	g.release <- nil
	if got := recv(t, g); got != want.String() {
		t.Fatalf("second write %q, want %q (all pending events in one write)", got, want.String())
	}
	g.release <- nil
	// Idle again: the next event is again written alone, at once.
	if err := s.Event(text("e11;")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, g); got != "e11;" {
		t.Fatalf("third write %q", got)
	}
	g.release <- nil
	done := make(chan error)
	go func() { done <- s.Close() }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// With a stalled client the buffer stays within the limit plus one
// event: the generator waits instead of growing it, and nothing is lost.
func TestBackpressureBoundsTheBuffer(t *testing.T) {
	const limit, size, n = 100, 40, 30
	g := newGate()
	s := New(context.Background(), g, limit)
	var want strings.Builder
	gen := make(chan error, 1)
	go func() {
		for i := range n {
			ev := fmt.Sprintf("%-*d", size, i)
			want.WriteString(ev)
			if err := s.Event(text(ev)); err != nil {
				gen <- err
				return
			}
		}
		gen <- nil
	}()
	var got strings.Builder
	for got.Len() < n*size {
		p := recv(t, g)
		if len(p) > limit+size {
			t.Fatalf("one write of %d bytes: the buffer outgrew limit %d + one event", len(p), limit)
		}
		got.WriteString(p)
		g.release <- nil
	}
	if err := <-gen; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Fatalf("events out of order or lost:\n got %q\nwant %q", got.String(), want.String())
	}
}

// A client that goes away makes a later Event fail, so generation stops,
// and Close reports the error once the goroutine has ended.
func TestWriteErrorStopsTheGenerator(t *testing.T) {
	pr, pw := io.Pipe()
	s := New(context.Background(), pw, 0)
	gone := errors.New("client gone")
	_ = pr.CloseWithError(gone)
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for err == nil && time.Now().Before(deadline) {
		err = s.Event(text("data: x\n\n"))
		runtime.Gosched()
	}
	if !errors.Is(err, gone) {
		t.Fatalf("Event = %v, want %v", err, gone)
	}
	if err := s.Close(); !errors.Is(err, gone) {
		t.Fatalf("Close = %v, want %v", err, gone)
	}
	if err := s.Event(text("more")); !errors.Is(err, gone) {
		t.Fatalf("Event after Close = %v", err)
	}
}

// The request's context ending stops the writer goroutine and the
// generator, even with the generator waiting on a full buffer.
func TestContextEndStopsTheStream(t *testing.T) {
	g := newGate()
	ctx, cancel := context.WithCancel(context.Background())
	s := New(ctx, g, 10)
	if err := s.Event(text("first")); err != nil {
		t.Fatal(err)
	}
	recv(t, g) // the writer is now stuck in a write
	if err := s.Event(text("0123456789")); err != nil {
		t.Fatal(err)
	}
	blocked := make(chan error, 1)
	go func() { blocked <- s.Event(text("waits for space")) }()
	cancel()
	g.release <- nil // the stalled write returns; the goroutine sees ctx
	select {
	case err := <-blocked:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("blocked Event = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the generator stayed blocked after the context ended")
	}
	if err := s.Close(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v", err)
	}
}

func TestEncodeErrorDiscardsThePartialEvent(t *testing.T) {
	var buf bytes.Buffer
	s := New(context.Background(), &lockedWriter{w: &buf}, 0)
	bad := errors.New("bad value")
	if err := s.Event(func(b *bytes.Buffer) error { b.WriteString("half"); return bad }); !errors.Is(err, bad) {
		t.Fatalf("Event = %v", err)
	}
	if err := s.Event(text("whole")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "whole" {
		t.Fatalf("wrote %q, want whole", buf.String())
	}
}

// An http.ResponseWriter is flushed after each write, and Close drains
// what is buffered.
func TestFlushesAResponseWriter(t *testing.T) {
	rec := httptest.NewRecorder()
	s := New(context.Background(), rec, 0)
	for i := range 100 {
		if err := s.Event(text(fmt.Sprintf("data: %d\n\n", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !rec.Flushed {
		t.Fatal("not flushed")
	}
	if n := strings.Count(rec.Body.String(), "data: "); n != 100 {
		t.Fatalf("%d events written, want 100", n)
	}
}

// Every writer goroutine ends with Close.
func TestNoGoroutineOutlivesClose(t *testing.T) {
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := New(context.Background(), io.Discard, 0)
			_ = s.Event(text("x"))
			_ = s.Close()
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before", runtime.NumGoroutine(), before)
		}
		runtime.Gosched()
	}
}

// Over real HTTP: a client that reads one event and hangs up ends the
// handler's stream (its Event fails, Close returns).
func TestHTTPClientHangsUp(t *testing.T) {
	ended := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		s := New(r.Context(), w, 4096)
		var err error
		for err == nil {
			err = s.Event(text("data: " + strings.Repeat("x", 1000) + "\n\n"))
		}
		_ = s.Close()
		ended <- err
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "data: " {
		t.Fatalf("first event: %q, %v", buf, err)
	}
	_ = resp.Body.Close()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("stream ended without an error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the handler kept streaming to a client that hung up")
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// BenchmarkEvent is the generator's cost per event with a client that
// keeps up (io.Discard).
func BenchmarkEvent(b *testing.B) {
	s := New(context.Background(), io.Discard, 0)
	ev := text(`data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":" the"}}]}` + "\n\n")
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Event(ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
}
