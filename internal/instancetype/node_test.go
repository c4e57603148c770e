package instancetype

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func lookup(t *testing.T, name string) Type {
	t.Helper()
	ty, err := mustDefault(t).Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return ty
}

func TestReserveAndRelease(t *testing.T) {
	n := NewNode(8, 32<<30)
	xl := lookup(t, "ml.m5.xlarge") // 4 vCPUs, 16 GiB
	r1, err := n.Reserve(xl)
	if err != nil {
		t.Fatal(err)
	}
	if c, m := n.Free(); c != 4 || m != 16<<30 {
		t.Fatalf("free after one = %d vCPUs, %d bytes", c, m)
	}
	r2, err := n.Reserve(xl)
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.Reserve(lookup(t, "ml.t2.medium"))
	if !errors.Is(err, ErrInsufficientCapacity) {
		t.Fatalf("third reservation: err = %v, want ErrInsufficientCapacity", err)
	}
	want := "ml.t2.medium needs 2 vCPUs and 4 GiB; this node has 0 vCPUs and 0 GiB free (of 8 vCPUs, 32 GiB)"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q\nwant prefix %q", err, want)
	}
	r1.Release()
	r1.Release() // idempotent: must not free twice
	if c, m := n.Free(); c != 4 || m != 16<<30 {
		t.Fatalf("free after double release = %d vCPUs, %d bytes; want 4, 16 GiB", c, m)
	}
	r2.Release()
	if c, m := n.Free(); c != 8 || m != 32<<30 {
		t.Fatalf("free after all released = %d, %d", c, m)
	}
}

func TestMemoryBound(t *testing.T) {
	n := NewNode(64, 8<<30)
	_, err := n.Reserve(lookup(t, "ml.m5.xlarge"))
	if !errors.Is(err, ErrInsufficientCapacity) || !strings.Contains(err.Error(), "16 GiB") {
		t.Fatalf("err = %v; want insufficient memory naming 16 GiB", err)
	}
}

func TestAccelerators(t *testing.T) {
	g5 := lookup(t, "ml.g5.xlarge")

	_, err := NewNode(64, 256<<30).Reserve(g5)
	if !errors.Is(err, ErrNoAccelerator) || !strings.HasPrefix(err.Error(), "ml.g5.xlarge needs 1 NVIDIA A10G GPU; this node has none") {
		t.Fatalf("no-GPU node: err = %v", err)
	}
	_, err = NewNode(64, 256<<30).Reserve(lookup(t, "ml.inf2.xlarge"))
	if !errors.Is(err, ErrNoAccelerator) || !strings.HasPrefix(err.Error(), "ml.inf2.xlarge needs 1 AWS Inferentia2 accelerator; this node has none") {
		t.Fatalf("no-Inferentia node: err = %v", err)
	}

	em := NewNode(64, 256<<30, EmulateAccelerators())
	r, err := em.Reserve(g5)
	if err != nil || !r.Emulated {
		t.Fatalf("emulating node: %v, %+v", err, r)
	}
	if c, _ := em.Free(); c != 60 {
		t.Errorf("emulated reservation still counts vCPUs: free %d, want 60", c)
	}

	// A node with one real A10G places one g5 for real, then refuses the
	// second even when emulating: a device it has is never faked.
	gpuNode := NewNode(64, 256<<30, WithAccelerators("NVIDIA A10G", 1), EmulateAccelerators())
	r1, err := gpuNode.Reserve(g5)
	if err != nil || r1.Emulated {
		t.Fatalf("first g5: %v, emulated=%v", err, r1 != nil && r1.Emulated)
	}
	if gpuNode.FreeAccelerators("NVIDIA A10G") != 0 {
		t.Fatal("the A10G is still free")
	}
	_, err = gpuNode.Reserve(g5)
	if !errors.Is(err, ErrInsufficientCapacity) || !strings.Contains(err.Error(), "this node has 0 of 1 free") {
		t.Fatalf("second g5: err = %v", err)
	}
	r1.Release()
	r1.Release()
	if gpuNode.FreeAccelerators("NVIDIA A10G") != 1 {
		t.Fatalf("free A10G after release = %d, want 1", gpuNode.FreeAccelerators("NVIDIA A10G"))
	}
}

// Many goroutines race to reserve; exactly as many as fit succeed, and
// after every release the node is whole again.
func TestReserveConcurrent(t *testing.T) {
	const fit = 10
	large := lookup(t, "ml.m5.large") // 2 vCPUs, 8 GiB
	n := NewNode(2*fit, 8*fit<<30)
	var ok atomic.Int32
	var mu sync.Mutex
	var held []*Reservation
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := n.Reserve(large)
			if err != nil {
				if !errors.Is(err, ErrInsufficientCapacity) {
					t.Errorf("Reserve: %v", err)
				}
				return
			}
			ok.Add(1)
			mu.Lock()
			held = append(held, r)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ok.Load() != fit {
		t.Fatalf("%d reservations succeeded, want exactly %d", ok.Load(), fit)
	}
	for _, r := range held {
		wg.Add(2)
		go func() { defer wg.Done(); r.Release() }()
		go func() { defer wg.Done(); r.Release() }()
	}
	wg.Wait()
	if c, m := n.Free(); c != 2*fit || m != 8*fit<<30 {
		t.Fatalf("free after releases = %d, %d; want full capacity", c, m)
	}
}
