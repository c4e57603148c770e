package instancetype

import (
	"errors"
	"fmt"
	"math"
	"sync"
)

// DefaultOvercommit is the suggested multiple of the machine's real CPUs and
// memory that a node advertises: instance types are nominal shapes, and a
// laptop must host several "ml.m5.xlarge" instances (4 vCPUs, 16 GiB each)
// whose models use a fraction of that. The composition root computes
//
//	NewNode(DefaultOvercommit*runtime.NumCPU(), DefaultOvercommit*physicalMemory, EmulateAccelerators())
//
// so an 8-CPU, 16 GiB laptop places 32 vCPUs and 64 GiB: four ml.m5.xlarge.
const DefaultOvercommit = 4

// ErrInsufficientCapacity is what Reserve's error wraps when the node's free
// vCPUs, memory or accelerators do not fit the type.
var ErrInsufficientCapacity = errors.New("insufficient capacity")

// ErrNoAccelerator is what Reserve's error wraps when the type needs an
// accelerator the node does not have and does not emulate.
var ErrNoAccelerator = errors.New("accelerator not available")

// NodeOption configures a Node.
type NodeOption func(*Node)

// WithAccelerators declares count devices named name (e.g. "NVIDIA A10G",
// matching Accelerator.Name) that this node really has.
func WithAccelerators(name string, count int) NodeOption {
	return func(n *Node) { n.accel[name] += count }
}

// EmulateAccelerators lets the node place types whose accelerator it does
// not have: their instances run on CPU, and the Reservation says Emulated
// so the caller can warn. Without it such types are refused.
//
// Suggested default for the composition root: on. A user trying a
// SageMaker notebook locally expects ml.g5.xlarge to deploy (inferbox's
// built-in runtimes run on CPU anyway) and a warning in the log, not a
// refusal; production nodes turn it off to fail loudly.
func EmulateAccelerators() NodeOption { return func(n *Node) { n.emulate = true } }

// Node is the capacity of the machine placing instances: vCPUs, memory and
// accelerator devices that reservations count against. Safe for concurrent
// use.
type Node struct {
	vcpus   int
	memory  int64
	emulate bool

	mu        sync.Mutex
	usedCPU   int
	usedMem   int64
	accel     map[string]int // device name -> count on the node
	usedAccel map[string]int
}

// NewNode returns a node advertising vcpus and memoryBytes (see
// DefaultOvercommit), with no accelerators unless options add them.
func NewNode(vcpus int, memoryBytes int64, opts ...NodeOption) *Node {
	n := &Node{vcpus: vcpus, memory: memoryBytes, accel: map[string]int{}, usedAccel: map[string]int{}}
	for _, o := range opts {
		o(n)
	}
	return n
}

// Reservation holds one instance's share of a node until Release.
type Reservation struct {
	Type     Type
	Emulated bool // the type's accelerator is emulated: the instance runs without it

	node     *Node
	accel    int // devices held
	released bool
}

// Reserve counts an instance of t against the node's free capacity.
func (n *Node) Reserve(t Type) (*Reservation, error) {
	mem := t.MemoryBytes()
	n.mu.Lock()
	defer n.mu.Unlock()
	r := &Reservation{Type: t, node: n}
	if a := t.Accelerator; a != nil {
		have := n.accel[a.Name]
		switch {
		case have == 0 && n.emulate:
			r.Emulated = true
		case have == 0:
			return nil, fmt.Errorf("%s needs %s; this node has none (emulate accelerators to place it on CPU): %w",
				t.Name, a, ErrNoAccelerator)
		case have-n.usedAccel[a.Name] < a.Count:
			return nil, fmt.Errorf("%s needs %s; this node has %d of %d free: %w",
				t.Name, a, have-n.usedAccel[a.Name], have, ErrInsufficientCapacity)
		default:
			r.accel = a.Count
		}
	}
	if n.usedCPU+t.VCPUs > n.vcpus || n.usedMem+mem > n.memory {
		return nil, fmt.Errorf("%s needs %d vCPUs and %s; this node has %d vCPUs and %s free (of %d vCPUs, %s): %w",
			t.Name, t.VCPUs, gib(mem), n.vcpus-n.usedCPU, gib(n.memory-n.usedMem), n.vcpus, gib(n.memory),
			ErrInsufficientCapacity)
	}
	n.usedCPU += t.VCPUs
	n.usedMem += mem
	if r.accel > 0 {
		n.usedAccel[t.Accelerator.Name] += r.accel
	}
	return r, nil
}

// Release returns the reservation's share to the node. It is idempotent.
func (r *Reservation) Release() {
	n := r.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if r.released {
		return
	}
	r.released = true
	n.usedCPU -= r.Type.VCPUs
	n.usedMem -= r.Type.MemoryBytes()
	if r.accel > 0 {
		n.usedAccel[r.Type.Accelerator.Name] -= r.accel
	}
}

// Free is the node's unreserved vCPUs and memory.
func (n *Node) Free() (vcpus int, memoryBytes int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.vcpus - n.usedCPU, n.memory - n.usedMem
}

// Capacity is what the node advertises in all.
func (n *Node) Capacity() (vcpus int, memoryBytes int64) { return n.vcpus, n.memory }

// FreeAccelerators is how many devices named name are unreserved.
func (n *Node) FreeAccelerators(name string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.accel[name] - n.usedAccel[name]
}

// gib formats bytes as GiB, without decimals when whole.
func gib(b int64) string {
	return fmt.Sprintf("%g GiB", math.Round(float64(b)/(1<<30)*100)/100)
}
