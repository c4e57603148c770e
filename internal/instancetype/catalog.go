// Package instancetype owns inferbox's instance-type catalog (the ml.*
// types SageMaker requests name: their vCPUs, memory, accelerator, purpose
// and a default hourly price) and the capacity of the node that places
// instances of them.
//
// The catalog is data, not code: types.yaml is embedded, and a user file
// can add or replace types (Merge). The prices in it are defaults; a price
// book may override them.
//
// It imports only the standard library and the YAML decoder: never the
// catalog, the pool, a mode service or an adapter.
package instancetype

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed types.yaml
var defaultTypes []byte

// Accelerator kinds.
const (
	KindGPU        = "gpu"
	KindInferentia = "inferentia"
	KindTrainium   = "trainium"
)

// Purposes.
const (
	PurposeGeneral      = "general"
	PurposeCompute      = "compute"
	PurposeMemory       = "memory"
	PurposeGPUInference = "gpu-inference"
	PurposeInference    = "inference"
	PurposeTraining     = "training"
)

var (
	kinds    = []string{KindGPU, KindInferentia, KindTrainium}
	purposes = []string{PurposeGeneral, PurposeCompute, PurposeMemory, PurposeGPUInference, PurposeInference, PurposeTraining}
)

// Accelerator is the devices an instance type carries.
type Accelerator struct {
	Kind      string  `yaml:"kind"`                // gpu, inferentia, trainium
	Count     int     `yaml:"count"`               // devices per instance
	Name      string  `yaml:"name"`                // e.g. "NVIDIA A10G"
	MemoryGiB float64 `yaml:"memoryGiB,omitempty"` // per device
}

// String reads "1 NVIDIA A10G GPU" or "2 AWS Inferentia2 accelerators".
func (a Accelerator) String() string {
	noun := "accelerator"
	if a.Kind == KindGPU {
		noun = "GPU"
	}
	if a.Count != 1 {
		noun += "s"
	}
	return fmt.Sprintf("%d %s %s", a.Count, a.Name, noun)
}

// Type is one instance type.
type Type struct {
	Name        string       `yaml:"name"`
	VCPUs       int          `yaml:"vcpus"`
	MemoryGiB   float64      `yaml:"memoryGiB"`
	Accelerator *Accelerator `yaml:"accelerator,omitempty"`
	Purpose     string       `yaml:"purpose"`
	HourlyUSD   float64      `yaml:"hourlyUSD"` // on-demand real-time inference list price
	Note        string       `yaml:"note,omitempty"`
}

// MemoryBytes is the type's memory in bytes.
func (t Type) MemoryBytes() int64 { return int64(math.Round(t.MemoryGiB * (1 << 30))) }

// Threads is how many runtime threads an instance of t gets on a node with
// nodeCPUs real CPUs: its vCPUs, no more than the node has, at least 1.
func (t Type) Threads(nodeCPUs int) int { return max(1, min(t.VCPUs, nodeCPUs)) }

// validate reports the first problem with t, naming the field.
func (t Type) validate() error {
	switch {
	case !strings.HasPrefix(t.Name, "ml.") || strings.TrimPrefix(t.Name, "ml.") == "":
		return fmt.Errorf("name %q: must start with \"ml.\"", t.Name)
	case t.VCPUs < 1:
		return fmt.Errorf("%s: vcpus %d: must be at least 1", t.Name, t.VCPUs)
	case !(t.MemoryGiB > 0):
		return fmt.Errorf("%s: memoryGiB %v: must be positive", t.Name, t.MemoryGiB)
	case !slices.Contains(purposes, t.Purpose):
		return fmt.Errorf("%s: purpose %q: must be one of %s", t.Name, t.Purpose, strings.Join(purposes, ", "))
	case t.HourlyUSD < 0 || math.IsNaN(t.HourlyUSD):
		return fmt.Errorf("%s: hourlyUSD %v: must not be negative", t.Name, t.HourlyUSD)
	}
	if a := t.Accelerator; a != nil {
		switch {
		case !slices.Contains(kinds, a.Kind):
			return fmt.Errorf("%s: accelerator.kind %q: must be one of %s", t.Name, a.Kind, strings.Join(kinds, ", "))
		case a.Count < 1:
			return fmt.Errorf("%s: accelerator.count %d: must be at least 1", t.Name, a.Count)
		case a.Name == "":
			return fmt.Errorf("%s: accelerator.name: must not be empty", t.Name)
		}
	}
	return nil
}

// Catalog is an immutable set of instance types, safe for concurrent use.
type Catalog struct {
	region, asOf string
	types        map[string]Type
	names        []string // sorted by family, then size
}

// file is the on-disk shape of types.yaml and of override files.
type file struct {
	Region string `yaml:"region"`
	AsOf   string `yaml:"asOf"`
	Types  []Type `yaml:"types"`
}

func decodeFile(r io.Reader) (file, error) {
	var f file
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return f, fmt.Errorf("instance types: %w", err)
	}
	seen := map[string]bool{}
	for _, t := range f.Types {
		if err := t.validate(); err != nil {
			return f, fmt.Errorf("instance types: %w", err)
		}
		if seen[t.Name] {
			return f, fmt.Errorf("instance types: %s listed twice", t.Name)
		}
		seen[t.Name] = true
	}
	return f, nil
}

// Default returns the embedded catalog.
func Default() (*Catalog, error) { return Parse(bytes.NewReader(defaultTypes)) }

// Parse reads a whole catalog in the types.yaml format (YAML or JSON).
func Parse(r io.Reader) (*Catalog, error) {
	f, err := decodeFile(r)
	if err != nil {
		return nil, err
	}
	c := &Catalog{region: f.Region, asOf: f.AsOf, types: map[string]Type{}}
	return c.with(f.Types), nil
}

// Merge returns a new catalog: c with the types of an override file (same
// format; region and asOf optional) added, or replacing those of the same
// name. c is unchanged.
func (c *Catalog) Merge(r io.Reader) (*Catalog, error) {
	f, err := decodeFile(r)
	if err != nil {
		return nil, err
	}
	n := &Catalog{region: c.region, asOf: c.asOf, types: make(map[string]Type, len(c.types)+len(f.Types))}
	for k, v := range c.types {
		n.types[k] = v
	}
	if f.Region != "" {
		n.region = f.Region
	}
	if f.AsOf != "" {
		n.asOf = f.AsOf
	}
	return n.with(f.Types), nil
}

// with adds ts to c (which it owns) and rebuilds the name order.
func (c *Catalog) with(ts []Type) *Catalog {
	for _, t := range ts {
		if t.Accelerator != nil {
			a := *t.Accelerator
			t.Accelerator = &a
		}
		c.types[t.Name] = t
	}
	c.names = c.names[:0]
	for name := range c.types {
		c.names = append(c.names, name)
	}
	slices.SortFunc(c.names, func(a, b string) int {
		ta, tb := c.types[a], c.types[b]
		if d := strings.Compare(family(a), family(b)); d != 0 {
			return d
		}
		if d := ta.VCPUs - tb.VCPUs; d != 0 {
			return d
		}
		if ta.MemoryGiB != tb.MemoryGiB {
			if ta.MemoryGiB < tb.MemoryGiB {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return c
}

// family is "ml.m5" of "ml.m5.xlarge".
func family(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[:i]
	}
	return name
}

// Region is the region the default prices are for.
func (c *Catalog) Region() string { return c.region }

// AsOf is the date the default prices were taken.
func (c *Catalog) AsOf() string { return c.asOf }

// Names lists every type, by family and then size.
func (c *Catalog) Names() []string { return slices.Clone(c.names) }

// ErrUnknownType is what Lookup's error wraps for a name not in the
// catalog.
var ErrUnknownType = errors.New("unknown instance type")

// UnknownTypeError names the value asked for and the valid ones.
type UnknownTypeError struct {
	Name  string
	Valid []string
}

func (e *UnknownTypeError) Error() string {
	return fmt.Sprintf("unknown instance type %q; valid types: %s", e.Name, strings.Join(e.Valid, ", "))
}

// Is makes errors.Is(err, ErrUnknownType) true.
func (e *UnknownTypeError) Is(target error) bool { return target == ErrUnknownType }

// Lookup returns the type of that exact name (SageMaker's enum is
// case-sensitive); an *UnknownTypeError otherwise.
func (c *Catalog) Lookup(name string) (Type, error) {
	t, ok := c.types[name]
	if !ok {
		return Type{}, &UnknownTypeError{Name: name, Valid: c.Names()}
	}
	if t.Accelerator != nil {
		a := *t.Accelerator
		t.Accelerator = &a
	}
	return t, nil
}

// ValidationMessage is SageMaker's ValidationException text for a value
// outside the catalog at fieldPath (e.g.
// "productionVariants.1.member.instanceType").
func (c *Catalog) ValidationMessage(value, fieldPath string) string {
	return EnumValidationMessage(value, fieldPath, c.names)
}

// EnumValidationMessage formats the AWS validation text for a value that is
// not one of valid:
//
//	1 validation error detected: Value 'ml.foo.bar' at 'productionVariants.1.member.instanceType' failed to satisfy constraint: Member must satisfy enum value set: [ml.t2.medium, ...]
func EnumValidationMessage(value, fieldPath string, valid []string) string {
	return fmt.Sprintf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy enum value set: [%s]",
		value, fieldPath, strings.Join(valid, ", "))
}
