// Package pricebook owns inferbox's prices: what an instance-hour, a
// serverless GB-second, a unit of provisioned concurrency, a thousand
// tokens of a foundation model and a model-unit-hour of provisioned
// throughput cost. Prices are data: pricebook.yaml is embedded and a user
// file (config key `pricebook`, same format) overrides any entry.
//
// Instance-type hourly prices are not duplicated here: the book reads
// them from the instance-type catalog (internal/instancetype) and lets the
// book's own `instances` entries override or add to them.
//
// A price that is not in the book is never read as zero: every lookup
// returns a *MissingPriceError naming the item.
//
// It imports only the standard library, instancetype and the YAML decoder:
// never the meter, the catalog, a mode service or an adapter.
package pricebook

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/inferbox/inferbox/internal/instancetype"
)

//go:embed pricebook.yaml
var defaultBook []byte

// Commitment terms of provisioned throughput.
const (
	TermNone   = "none"
	Term1Month = "1month"
	Term6Month = "6month"
)

// Instance is an instance type's price and what it is for.
type Instance struct {
	HourlyUSD float64 `yaml:"hourlyUSD"`
	Purpose   string  `yaml:"purpose,omitempty"` // from the catalog unless overridden: inference, training, ...
	Note      string  `yaml:"note,omitempty"`
}

// Serverless is serverless inference's prices.
type Serverless struct {
	// PerGBSecondUSD is the compute price per GB-second of inference
	// duration, by memory size in MB.
	PerGBSecondUSD map[int]float64 `yaml:"perGBSecondUSD"`
	// ProvisionedPerGBSecondUSD is the price per GB-second that
	// provisioned concurrency is kept warm.
	ProvisionedPerGBSecondUSD *float64 `yaml:"provisionedPerGBSecondUSD"`
}

// Model is a foundation model's on-demand token prices.
type Model struct {
	InputPer1KUSD  float64 `yaml:"inputPer1KUSD"`
	OutputPer1KUSD float64 `yaml:"outputPer1KUSD"`
	Note           string  `yaml:"note,omitempty"`
}

// ModelUnit is the hourly price of one model unit of provisioned
// throughput, by commitment term; a zero term is unpriced.
type ModelUnit struct {
	None   float64 `yaml:"none,omitempty"`
	Month1 float64 `yaml:"1month,omitempty"`
	Month6 float64 `yaml:"6month,omitempty"`
	Note   string  `yaml:"note,omitempty"`
}

// file is the on-disk shape of pricebook.yaml and of override files.
type file struct {
	Region        string               `yaml:"region"`
	AsOf          string               `yaml:"asOf"`
	Source        string               `yaml:"source"`
	Instances     map[string]Instance  `yaml:"instances"`
	Serverless    Serverless           `yaml:"serverless"`
	Models        map[string]Model     `yaml:"models"`
	BatchDiscount *float64             `yaml:"batchDiscount"`
	ModelUnits    map[string]ModelUnit `yaml:"modelUnits"`
}

// Book is an immutable price book, safe for concurrent use.
type Book struct {
	Region, AsOf, Source string

	instances     map[string]Instance
	serverless    map[int]float64
	provisioned   *float64
	models        map[string]Model
	batchDiscount float64
	modelUnits    map[string]ModelUnit
}

// ErrMissingPrice is what a *MissingPriceError wraps.
var ErrMissingPrice = errors.New("missing price")

// MissingPriceError names the item the book has no price for.
type MissingPriceError struct {
	Kind string // "instance type", "serverless memory size", ...
	Item string
}

func (e *MissingPriceError) Error() string {
	return fmt.Sprintf("price book has no price for %s %q: add it to the price book override file (config key pricebook)", e.Kind, e.Item)
}

// Is makes errors.Is(err, ErrMissingPrice) true.
func (e *MissingPriceError) Is(target error) bool { return target == ErrMissingPrice }

// Default is the embedded book over the instance-type catalog types.
func Default(types *instancetype.Catalog) (*Book, error) {
	f, err := decode(bytes.NewReader(defaultBook), "embedded price book")
	if err != nil {
		return nil, err
	}
	b := &Book{Region: f.Region, AsOf: f.AsOf, Source: f.Source, instances: map[string]Instance{},
		serverless: map[int]float64{}, models: map[string]Model{}, modelUnits: map[string]ModelUnit{}}
	if types != nil {
		for _, name := range types.Names() {
			t, err := types.Lookup(name)
			if err != nil {
				return nil, err
			}
			if t.HourlyUSD == 0 {
				continue // unpriced in the catalog: not free
			}
			b.instances[name] = Instance{HourlyUSD: t.HourlyUSD, Purpose: t.Purpose, Note: t.Note}
		}
		if types.Region() != b.Region || types.AsOf() != b.AsOf {
			b.Source += fmt.Sprintf("; instance prices from the instance-type catalog (%s, %s)", types.Region(), types.AsOf())
		}
	}
	return b.merge(f), nil
}

// Load is Default with the override file at path merged in; an empty path
// is Default alone.
func Load(path string, types *instancetype.Catalog) (*Book, error) {
	b, err := Default(types)
	if err != nil || path == "" {
		return b, err
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pricebook: %w", err)
	}
	defer fh.Close()
	return b.Merge(fh, path)
}

// Merge returns a new book: b with the entries of an override file (same
// format, every key optional) added or replacing b's. name labels errors.
func (b *Book) Merge(r io.Reader, name string) (*Book, error) {
	f, err := decode(r, name)
	if err != nil {
		return nil, err
	}
	n := *b
	n.instances, n.serverless = maps.Clone(b.instances), maps.Clone(b.serverless)
	n.models, n.modelUnits = maps.Clone(b.models), maps.Clone(b.modelUnits)
	if f.Source == "" {
		f.Source = "override " + name
	}
	n.Source = b.Source + "; " + f.Source
	return n.merge(f), nil
}

// merge adds f to b (which it owns).
func (b *Book) merge(f file) *Book {
	if f.Region != "" {
		b.Region = f.Region
	}
	if f.AsOf != "" {
		b.AsOf = f.AsOf
	}
	for k, v := range f.Instances {
		if v.Purpose == "" {
			v.Purpose = b.instances[k].Purpose
		}
		b.instances[k] = v
	}
	maps.Copy(b.serverless, f.Serverless.PerGBSecondUSD)
	if f.Serverless.ProvisionedPerGBSecondUSD != nil {
		p := *f.Serverless.ProvisionedPerGBSecondUSD
		b.provisioned = &p
	}
	maps.Copy(b.models, f.Models)
	if f.BatchDiscount != nil {
		b.batchDiscount = *f.BatchDiscount
	}
	maps.Copy(b.modelUnits, f.ModelUnits)
	return b
}

func decode(r io.Reader, name string) (file, error) {
	var f file
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return f, fmt.Errorf("pricebook %s: %w", name, err)
	}
	bad := func(key string, v float64) error {
		return fmt.Errorf("pricebook %s: %s: %v: must be a finite, non-negative price", name, key, v)
	}
	ok := func(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }
	for k, v := range f.Instances {
		if !ok(v.HourlyUSD) {
			return f, bad("instances."+k+".hourlyUSD", v.HourlyUSD)
		}
	}
	for mb, v := range f.Serverless.PerGBSecondUSD {
		if mb < 128 || !ok(v) {
			return f, fmt.Errorf("pricebook %s: serverless.perGBSecondUSD.%d: %v: memory must be at least 128 MB and the price non-negative", name, mb, v)
		}
	}
	if p := f.Serverless.ProvisionedPerGBSecondUSD; p != nil && !ok(*p) {
		return f, bad("serverless.provisionedPerGBSecondUSD", *p)
	}
	for k, m := range f.Models {
		if !ok(m.InputPer1KUSD) || !ok(m.OutputPer1KUSD) {
			return f, fmt.Errorf("pricebook %s: models.%s: prices must be finite and non-negative", name, k)
		}
	}
	if d := f.BatchDiscount; d != nil && !(*d >= 0 && *d < 1) {
		return f, fmt.Errorf("pricebook %s: batchDiscount: %v: must be in [0, 1)", name, *d)
	}
	for k, u := range f.ModelUnits {
		if !ok(u.None) || !ok(u.Month1) || !ok(u.Month6) {
			return f, fmt.Errorf("pricebook %s: modelUnits.%s: prices must be finite and non-negative", name, k)
		}
	}
	return f, nil
}

// InstanceHourly is the on-demand hourly price of an instance type.
func (b *Book) InstanceHourly(instanceType string) (float64, error) {
	i, ok := b.instances[instanceType]
	if !ok {
		return 0, &MissingPriceError{Kind: "instance type", Item: instanceType}
	}
	return i.HourlyUSD, nil
}

// Instance is an instance type's whole entry (price and purpose).
func (b *Book) Instance(instanceType string) (Instance, error) {
	i, ok := b.instances[instanceType]
	if !ok {
		return Instance{}, &MissingPriceError{Kind: "instance type", Item: instanceType}
	}
	return i, nil
}

// InstanceTypes lists the priced instance types, sorted.
func (b *Book) InstanceTypes() []string { return slices.Sorted(maps.Keys(b.instances)) }

// ServerlessPerGBSecond is the serverless compute price per GB-second for
// the memory size.
func (b *Book) ServerlessPerGBSecond(memoryMB int) (float64, error) {
	p, ok := b.serverless[memoryMB]
	if !ok {
		return 0, &MissingPriceError{Kind: "serverless memory size (MB)", Item: strconv.Itoa(memoryMB)}
	}
	return p, nil
}

// ProvisionedPerGBSecond is the provisioned-concurrency price per
// GB-second.
func (b *Book) ProvisionedPerGBSecond() (float64, error) {
	if b.provisioned == nil {
		return 0, &MissingPriceError{Kind: "serverless", Item: "provisionedPerGBSecondUSD"}
	}
	return *b.provisioned, nil
}

// Tokens is the on-demand price per 1,000 input and output tokens of a
// foundation model.
func (b *Book) Tokens(modelID string) (Model, error) {
	m, ok := b.models[modelID]
	if !ok {
		return Model{}, &MissingPriceError{Kind: "foundation model", Item: modelID}
	}
	return m, nil
}

// Models lists the foundation models with token prices, sorted.
func (b *Book) Models() []string { return slices.Sorted(maps.Keys(b.models)) }

// BatchDiscount is the fraction batch inference takes off the on-demand
// token price (0.5: half price).
func (b *Book) BatchDiscount() float64 { return b.batchDiscount }

// ModelUnitHourly is the hourly price of one model unit of provisioned
// throughput for modelID ("custom" for fine-tuned models) on a commitment
// term (TermNone, Term1Month, Term6Month).
func (b *Book) ModelUnitHourly(modelID, term string) (float64, error) {
	u, ok := b.modelUnits[modelID]
	if !ok {
		return 0, &MissingPriceError{Kind: "provisioned-throughput model", Item: modelID}
	}
	var p float64
	switch term {
	case TermNone:
		p = u.None
	case Term1Month:
		p = u.Month1
	case Term6Month:
		p = u.Month6
	default:
		return 0, fmt.Errorf("pricebook: commitment term %q: must be one of %s", term, strings.Join([]string{TermNone, Term1Month, Term6Month}, ", "))
	}
	if p == 0 {
		return 0, &MissingPriceError{Kind: "provisioned-throughput term", Item: modelID + " " + term}
	}
	return p, nil
}
