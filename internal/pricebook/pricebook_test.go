package pricebook

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inferbox/inferbox/internal/instancetype"
)

func mustDefault(t *testing.T) *Book {
	t.Helper()
	types, err := instancetype.Default()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Default(types)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDefaultReadsInstancePricesFromCatalog(t *testing.T) {
	types, _ := instancetype.Default()
	b := mustDefault(t)
	if b.Region != "us-east-1" || b.AsOf == "" {
		t.Fatalf("region %q asOf %q", b.Region, b.AsOf)
	}
	for _, name := range types.Names() {
		ty, _ := types.Lookup(name)
		got, err := b.InstanceHourly(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != ty.HourlyUSD {
			t.Errorf("%s: %v, catalog says %v", name, got, ty.HourlyUSD)
		}
	}
	for name, purpose := range map[string]string{"ml.inf2.xlarge": "inference", "ml.trn1.2xlarge": "training"} {
		i, err := b.Instance(name)
		if err != nil || i.Purpose != purpose {
			t.Errorf("%s: %+v %v, want purpose %s", name, i, err, purpose)
		}
	}
}

func TestDefaults(t *testing.T) {
	b := mustDefault(t)
	if p, err := b.ServerlessPerGBSecond(2048); err != nil || p != 0.00002 {
		t.Errorf("serverless 2048: %v %v", p, err)
	}
	if p, err := b.ProvisionedPerGBSecond(); err != nil || p <= 0 {
		t.Errorf("provisioned: %v %v", p, err)
	}
	if m, err := b.Tokens("meta.llama3-8b-instruct-v1:0"); err != nil || m.InputPer1KUSD != 0.0003 || m.OutputPer1KUSD != 0.0006 {
		t.Errorf("llama3 8b: %+v %v", m, err)
	}
	if b.BatchDiscount() != 0.5 {
		t.Errorf("batch discount %v", b.BatchDiscount())
	}
	if p, err := b.ModelUnitHourly("custom", Term6Month); err != nil || p <= 0 {
		t.Errorf("custom 6month: %v %v", p, err)
	}
}

func TestMissingPricesNameTheItem(t *testing.T) {
	b := mustDefault(t)
	for _, tc := range []struct {
		item string
		call func() error
	}{
		{"ml.x9.huge", func() error { _, err := b.InstanceHourly("ml.x9.huge"); return err }},
		{"1536", func() error { _, err := b.ServerlessPerGBSecond(1536); return err }},
		{"acme.model", func() error { _, err := b.Tokens("acme.model"); return err }},
		{"acme.model", func() error { _, err := b.ModelUnitHourly("acme.model", TermNone); return err }},
	} {
		err := tc.call()
		if !errors.Is(err, ErrMissingPrice) || !strings.Contains(err.Error(), tc.item) {
			t.Errorf("%s: err = %v, want a missing price naming it", tc.item, err)
		}
	}
	if _, err := b.ModelUnitHourly("custom", "3year"); err == nil || errors.Is(err, ErrMissingPrice) {
		t.Errorf("bad term: %v", err)
	}
}

func TestOverrideFile(t *testing.T) {
	types, _ := instancetype.Default()
	path := filepath.Join(t.TempDir(), "prices.yaml")
	os.WriteFile(path, []byte(`
asOf: "2026-02"
instances:
  ml.m5.large: {hourlyUSD: 0.1}
  ml.x9.huge: {hourlyUSD: 9, purpose: inference}
serverless:
  perGBSecondUSD: {1536: 0.00003}
batchDiscount: 0.25
models:
  acme.model: {inputPer1KUSD: 0.001, outputPer1KUSD: 0.002}
`), 0o644)
	b, err := Load(path, types)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := b.InstanceHourly("ml.m5.large"); p != 0.1 {
		t.Errorf("override ml.m5.large = %v", p)
	}
	if i, _ := b.Instance("ml.m5.large"); i.Purpose != "general" {
		t.Errorf("override lost the catalog purpose: %+v", i)
	}
	if p, _ := b.InstanceHourly("ml.x9.huge"); p != 9 {
		t.Errorf("added type = %v", p)
	}
	if p, _ := b.InstanceHourly("ml.c5.large"); p != 0.102 {
		t.Errorf("untouched type = %v", p)
	}
	if p, _ := b.ServerlessPerGBSecond(1536); p != 0.00003 {
		t.Errorf("serverless 1536 = %v", p)
	}
	if b.BatchDiscount() != 0.25 || b.AsOf != "2026-02" || b.Region != "us-east-1" {
		t.Errorf("discount %v asOf %q region %q", b.BatchDiscount(), b.AsOf, b.Region)
	}
	if _, err := b.Tokens("meta.llama3-8b-instruct-v1:0"); err != nil {
		t.Errorf("defaults lost: %v", err)
	}
}

func TestBadOverrides(t *testing.T) {
	b := mustDefault(t)
	for _, tc := range []struct{ body, want string }{
		{`instances: {ml.m5.large: {hourlyUSD: -1}}`, "instances.ml.m5.large.hourlyUSD"},
		{`batchDiscount: 1.5`, "batchDiscount"},
		{`serverless: {perGBSecondUSD: {64: 0.1}}`, "serverless.perGBSecondUSD.64"},
		{`modles: {}`, "modles"},
	} {
		_, err := b.Merge(strings.NewReader(tc.body), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to name %s", tc.body, err, tc.want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil); err == nil {
		t.Error("missing override file: no error")
	}
}
