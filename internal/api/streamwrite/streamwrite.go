// Package streamwrite owns the writing side of a streamed HTTP response
// (OpenAI server-sent events, Bedrock's application/vnd.amazon.eventstream):
// the generating goroutine encodes each event into a buffer, with no
// system call, and one writer goroutine sends whatever is buffered with a
// single Write and Flush. While the client keeps up every event goes out
// on its own at once; when generation outpaces the socket, the events that
// piled up go out together in one write. The buffer is bounded: past the
// limit the generator waits (events are never dropped).
//
// streamwrite knows nothing of event formats; it imports only the standard
// library and must not import any inferbox package.
package streamwrite

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// DefaultLimit is the buffered bytes past which Event waits for the writer.
const DefaultLimit = 256 << 10

// ErrClosed is returned by Event after Close.
var ErrClosed = errors.New("streamwrite: stream closed")

// Writer coalesces events for one response. Event is called by one
// goroutine (the generator); Close ends the stream. The writer goroutine
// it starts is the only one touching the underlying writer until Close
// returns.
type Writer struct {
	w     io.Writer
	flush func() error
	limit int

	mu      sync.Mutex
	pending *bytes.Buffer // events not yet taken by the writer goroutine
	err     error         // first write, flush or context error; sticky
	closed  bool

	wake    chan struct{} // cap 1: events are pending
	space   chan struct{} // cap 1: the writer took the pending events
	closing chan struct{} // closed by Close
	done    chan struct{} // closed when the writer goroutine ends
	stop    func() bool   // unregisters the context hook
	once    sync.Once
}

// New starts the writer goroutine for w. If w is an http.ResponseWriter,
// each write is followed by a Flush, and ctx's cancellation also sets a
// past write deadline so that a write blocked on a stalled client returns.
// limit bounds the buffered bytes (≤ 0: DefaultLimit); one event larger
// than the limit is still accepted when the buffer is empty. The caller
// must call Close, which waits for the goroutine.
func New(ctx context.Context, w io.Writer, limit int) *Writer {
	if limit <= 0 {
		limit = DefaultLimit
	}
	s := &Writer{
		w: w, limit: limit, flush: func() error { return nil },
		pending: new(bytes.Buffer),
		wake:    make(chan struct{}, 1), space: make(chan struct{}, 1),
		closing: make(chan struct{}), done: make(chan struct{}),
	}
	abort := func() {}
	if rw, ok := w.(http.ResponseWriter); ok {
		rc := http.NewResponseController(rw)
		s.flush = func() error {
			if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
				return err
			}
			return nil
		}
		abort = func() { _ = rc.SetWriteDeadline(time.Unix(1, 0)) }
	}
	s.stop = context.AfterFunc(ctx, abort)
	go s.run(ctx)
	return s
}

// Event appends one event, written by encode onto the buffer, and wakes
// the writer. encode must write the whole event or return an error (the
// partial bytes are then discarded). Event waits while the buffer is past
// the limit, and returns the stream's error once a write has failed or
// the context has ended, so the generator stops.
func (s *Writer) Event(encode func(*bytes.Buffer) error) error {
	for {
		s.mu.Lock()
		if s.err != nil || s.closed {
			err := s.err
			s.mu.Unlock()
			if err == nil {
				err = ErrClosed
			}
			return err
		}
		if s.pending.Len() < s.limit {
			break
		}
		s.mu.Unlock()
		select {
		case <-s.space:
		case <-s.done:
		}
	}
	n := s.pending.Len()
	err := encode(s.pending)
	if err != nil {
		s.pending.Truncate(n)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// Close writes what is buffered, ends the writer goroutine and returns
// the first write error (nil if every event was written). After Close the
// underlying writer is the caller's again. Close is idempotent.
func (s *Writer) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.closing)
	})
	<-s.done
	s.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// run is the writer goroutine: it takes all pending events, writes them
// in one Write and flushes, until Close (after a last drain), a write
// error or ctx's end. Two buffers alternate so the generator appends to
// one while the other is on the wire.
func (s *Writer) run(ctx context.Context) {
	defer close(s.done)
	writing := new(bytes.Buffer)
	for {
		if err := ctx.Err(); err != nil { // before more writes to a gone client
			s.fail(err)
			return
		}
		closing := false
		select {
		case <-s.wake:
		case <-s.closing:
			closing = true
		case <-ctx.Done():
			s.fail(ctx.Err())
			return
		}
		s.mu.Lock()
		writing.Reset()
		s.pending, writing = writing, s.pending
		s.mu.Unlock()
		select {
		case s.space <- struct{}{}:
		default:
		}
		if writing.Len() > 0 {
			_, err := s.w.Write(writing.Bytes())
			if err == nil {
				err = s.flush()
			}
			if err != nil {
				s.fail(err)
				return
			}
		}
		if closing {
			// Close comes after the generator's last Event, so
			// the swap above took everything.
			return
		}
	}
}

func (s *Writer) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}
