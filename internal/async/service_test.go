package async

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/hosting"
	"github.com/inferbox/inferbox/internal/objstore"
	"github.com/inferbox/inferbox/internal/queue"
)

// fakeHosting stands in for hosting (a dependency of the service under
// test): one async endpoint "ep" whose capacity tests change, and whose
// model always fails.
type fakeHosting struct {
	mu       sync.Mutex
	capacity int
	output   hosting.AsyncOutput
	// hold, if set, makes each invocation wait for it to close (or for
	// its context to end); started and ended report each invocation's
	// start and how it ended ("released" or the context's error).
	hold    chan struct{}
	started chan struct{}
	ended   chan string
	polls   int // AsyncEndpoint calls
}

func (f *fakeHosting) pollCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.polls }

func (f *fakeHosting) setCapacity(n int) { f.mu.Lock(); f.capacity = n; f.mu.Unlock() }

func (f *fakeHosting) AsyncEndpoint(_ context.Context, name string) (*hosting.AsyncEndpoint, error) {
	if name != "ep" {
		return nil, apierr.New(apierr.NotFound, "Endpoint %s not found.", name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	out := f.output
	return &hosting.AsyncEndpoint{Name: name, Output: &out, Capacity: f.capacity, Instances: 1}, nil
}

func (f *fakeHosting) InvokeAsync(ctx context.Context, _ *hosting.InvokeInput) (*hosting.Invocation, error) {
	if f.hold != nil {
		f.started <- struct{}{}
		select {
		case <-f.hold:
			f.ended <- "released"
		case <-ctx.Done():
			f.ended <- ctx.Err().Error()
		}
	}
	return nil, apierr.New(apierr.Internal, "the model failed")
}

type rig struct {
	svc     *Service
	q       *queue.JetStream
	objects *objstore.Embedded
	h       *fakeHosting
}

// newRig starts a service over a real embedded queue and object store.
func newRig(t *testing.T, h *fakeHosting, cfg Config) *rig {
	t.Helper()
	ctx := context.Background()
	q, err := queue.Open(ctx, queue.Config{Dir: t.TempDir(), MaxDeliver: 3, PollWait: 50 * time.Millisecond, AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	emb, err := objstore.OpenEmbedded(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxDeliver = 3
	cfg.RetryDelay = time.Millisecond
	if cfg.CapacityPoll == 0 {
		cfg.CapacityPoll = 10 * time.Millisecond
	}
	store, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.InitAsyncInferences(ctx); err != nil {
		t.Fatal(err)
	}
	svc := New(cfg, h, q, objstore.NewResolver(emb), nil, nil).WithIndex(store)
	svc.Start([]string{"ep"})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := svc.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &rig{svc: svc, q: q, objects: emb, h: h}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A request whose failure object cannot be written (its bucket does not
// exist) is delivered MaxDeliver+1 times, then terminated: the queue holds
// nothing for it and hands it out no more.
func TestUnwritableFailureIsBounded(t *testing.T) {
	ctx := context.Background()
	h := &fakeHosting{capacity: 2, output: hosting.AsyncOutput{S3OutputPath: "s3://gone/out"}}
	r := newRig(t, h, Config{})
	if _, err := r.svc.Submit(ctx, &SubmitInput{EndpointName: "ep", Body: []byte("1,2,3"), InferenceID: "doomed"}); err != nil {
		t.Fatal(err)
	}
	topic := topicOf("ep")
	var st queue.TopicStats
	waitFor(t, 20*time.Second, "the request to leave the queue", func() bool {
		dep, err := r.q.Depth(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		st, err = r.q.Stats(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		return dep.Messages == 0 && st.Leased == 0 && st.Waiting == 0
	})
	if st.Delivered != 4 {
		t.Errorf("delivered %d times, want MaxDeliver+1 = 4", st.Delivered)
	}
	if n := r.svc.Abandoned("ep"); n != 1 {
		t.Errorf("abandoned count %d, want 1", n)
	}
	// The status says it failed, with a reason naming the failure object.
	stat, err := r.svc.Status(ctx, "ep", "doomed")
	if err != nil {
		t.Fatal(err)
	}
	if stat.Status != StatusFailed || !strings.Contains(stat.FailureReason, "could not be written") {
		t.Errorf("status %+v", stat)
	}
}

// Worker slots follow the endpoint's capacity out and back in.
func TestSlotsFollowCapacity(t *testing.T) {
	h := &fakeHosting{capacity: 2, output: hosting.AsyncOutput{S3OutputPath: "s3://out/ep"}}
	r := newRig(t, h, Config{})
	for _, n := range []int{2, 8, 3, 1, 0, 5} {
		h.setCapacity(n)
		waitFor(t, 10*time.Second, "slots to follow capacity", func() bool { return r.svc.Slots("ep") == n })
	}
	if r.svc.Slots("other") != 0 {
		t.Error("an endpoint without a worker has slots")
	}
}

// Status answers from the index: an id never accepted is NotFound, an
// accepted one is Pending until its worker records its end.
func TestStatusOfUnknownAndAcceptedIDs(t *testing.T) {
	ctx := context.Background()
	h := &fakeHosting{capacity: 0, output: hosting.AsyncOutput{S3OutputPath: "s3://out/ep"}}
	r := newRig(t, h, Config{})
	if err := r.objects.CreateBucket(ctx, "out"); err != nil {
		t.Fatal(err)
	}
	_, err := r.svc.Status(ctx, "ep", "never-submitted")
	if e := apierr.As(err); err == nil || e.Kind != apierr.NotFound || !strings.Contains(e.Message, "never-submitted") {
		t.Fatalf("unknown id: %v", err)
	}
	// With no capacity nothing runs: the accepted request stays Pending.
	if _, err := r.svc.Submit(ctx, &SubmitInput{EndpointName: "ep", Body: []byte("1"), InferenceID: "known"}); err != nil {
		t.Fatal(err)
	}
	st, err := r.svc.Status(ctx, "ep", "known")
	if err != nil || st.Status != StatusPending || st.OutputLocation != "s3://out/ep/known.out" {
		t.Fatalf("accepted id: %+v, %v", st, err)
	}
	// The same id on another endpoint is not known there.
	if _, err := r.svc.Status(ctx, "nope", "known"); err == nil {
		t.Fatal("unknown endpoint answered")
	}
	// Given capacity, the (always failing) model fails it for good.
	h.setCapacity(1)
	waitFor(t, 20*time.Second, "the request to fail", func() bool {
		st, err = r.svc.Status(ctx, "ep", "known")
		return err == nil && st.Status != StatusPending
	})
	if st.Status != StatusFailed || !strings.Contains(st.FailureReason, "the model failed") {
		t.Fatalf("after the run: %+v", st)
	}
	if _, _, err := r.objects.GetObject(ctx, "out", "ep/known-error.out", nil); err != nil {
		t.Fatalf("failure object: %v", err)
	}
}

// A slot retired while it runs a request lets the request run to its end:
// the invocation's context is not cancelled by the scale-in.
func TestRetiredSlotFinishesItsRequest(t *testing.T) {
	ctx := context.Background()
	h := &fakeHosting{capacity: 1, output: hosting.AsyncOutput{S3OutputPath: "s3://out/ep"},
		hold: make(chan struct{}), started: make(chan struct{}, 4), ended: make(chan string, 4)}
	r := newRig(t, h, Config{})
	if err := r.objects.CreateBucket(ctx, "out"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Submit(ctx, &SubmitInput{EndpointName: "ep", Body: []byte("1"), InferenceID: "long"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.started:
	case <-time.After(20 * time.Second):
		t.Fatal("the request never started")
	}
	h.setCapacity(0)
	// Two more capacity polls: the worker has seen 0 and retired the slot.
	seen := h.pollCount()
	waitFor(t, 10*time.Second, "the worker to read the new capacity", func() bool { return h.pollCount() >= seen+2 })
	select {
	case how := <-h.ended:
		t.Fatalf("the running request ended (%s) when its slot was retired", how)
	default:
	}
	if n := r.svc.Slots("ep"); n != 1 {
		t.Fatalf("slots while the retired slot's request runs: %d, want 1", n)
	}
	close(h.hold)
	if how := <-h.ended; how != "released" {
		t.Fatalf("the request ended by %s", how)
	}
	waitFor(t, 10*time.Second, "the retired slot to stop", func() bool { return r.svc.Slots("ep") == 0 })
}
