package instancetype

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func mustDefault(t *testing.T) *Catalog {
	t.Helper()
	c, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	return c
}

func TestDefaultCatalog(t *testing.T) {
	c := mustDefault(t)
	if c.Region() != "us-east-1" || c.AsOf() == "" {
		t.Errorf("region %q asOf %q; want us-east-1 and a date", c.Region(), c.AsOf())
	}
	required := []string{"ml.t2.medium", "ml.m5.large", "ml.m5.xlarge", "ml.c5.large", "ml.c5.xlarge",
		"ml.c5.2xlarge", "ml.g5.xlarge", "ml.inf2.xlarge", "ml.trn1.2xlarge", "ml.m5.2xlarge", "ml.m5.4xlarge",
		"ml.c5.4xlarge", "ml.inf1.xlarge", "ml.g4dn.xlarge", "ml.p3.2xlarge"}
	for _, name := range required {
		ty, err := c.Lookup(name)
		if err != nil {
			t.Errorf("Lookup(%s): %v", name, err)
			continue
		}
		if ty.Name != name || ty.VCPUs < 1 || ty.MemoryGiB <= 0 || ty.HourlyUSD <= 0 {
			t.Errorf("%s = %+v", name, ty)
		}
	}
	tests := []struct {
		name, purpose, accel, kind string
		vcpus                      int
		mem                        float64
	}{
		{"ml.m5.xlarge", PurposeGeneral, "", "", 4, 16},
		{"ml.c5.2xlarge", PurposeCompute, "", "", 8, 16},
		{"ml.g5.xlarge", PurposeGPUInference, "NVIDIA A10G", KindGPU, 4, 16},
		{"ml.inf2.xlarge", PurposeInference, "AWS Inferentia2", KindInferentia, 4, 16},
		{"ml.trn1.2xlarge", PurposeTraining, "AWS Trainium", KindTrainium, 8, 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ty, err := c.Lookup(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if ty.Purpose != tt.purpose || ty.VCPUs != tt.vcpus || ty.MemoryGiB != tt.mem {
				t.Errorf("got %+v", ty)
			}
			switch {
			case tt.accel == "" && ty.Accelerator != nil:
				t.Errorf("unexpected accelerator %+v", ty.Accelerator)
			case tt.accel != "" && (ty.Accelerator == nil || ty.Accelerator.Name != tt.accel || ty.Accelerator.Kind != tt.kind || ty.Accelerator.Count != 1):
				t.Errorf("accelerator %+v, want 1 %s (%s)", ty.Accelerator, tt.accel, tt.kind)
			}
		})
	}
	names := c.Names()
	// Family, then size: large before xlarge before 2xlarge.
	i, j, k := slices.Index(names, "ml.c5.large"), slices.Index(names, "ml.c5.xlarge"), slices.Index(names, "ml.c5.2xlarge")
	if !(i < j && j < k) {
		t.Errorf("Names order: %v", names)
	}
	names[0] = "mutated"
	if c.Names()[0] == "mutated" {
		t.Error("Names returned the catalog's own slice")
	}
}

func TestLookupUnknown(t *testing.T) {
	c := mustDefault(t)
	for _, name := range []string{"ml.foo.bar", "ML.M5.LARGE", "", "m5.large"} {
		_, err := c.Lookup(name)
		if !errors.Is(err, ErrUnknownType) {
			t.Fatalf("Lookup(%q): err = %v, want ErrUnknownType", name, err)
		}
		var ue *UnknownTypeError
		if !errors.As(err, &ue) || ue.Name != name || !slices.Equal(ue.Valid, c.Names()) {
			t.Fatalf("Lookup(%q): %#v", name, err)
		}
		if msg := err.Error(); !strings.Contains(msg, `"`+name+`"`) || !strings.Contains(msg, "ml.m5.large") {
			t.Errorf("message %q should name the value and list valid types", msg)
		}
	}
}

func TestValidationMessage(t *testing.T) {
	got := EnumValidationMessage("ml.foo.bar", "productionVariants.1.member.instanceType", []string{"ml.t2.medium", "ml.m5.large"})
	want := "1 validation error detected: Value 'ml.foo.bar' at 'productionVariants.1.member.instanceType' failed to satisfy constraint: Member must satisfy enum value set: [ml.t2.medium, ml.m5.large]"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	c := mustDefault(t)
	msg := c.ValidationMessage("ml.x", "transformResources.instanceType")
	if !strings.HasPrefix(msg, "1 validation error detected: Value 'ml.x' at 'transformResources.instanceType'") ||
		!strings.HasSuffix(msg, "["+strings.Join(c.Names(), ", ")+"]") {
		t.Fatalf("ValidationMessage = %s", msg)
	}
}

func TestMerge(t *testing.T) {
	c := mustDefault(t)
	override := `
asOf: "2026-06"
types:
  - {name: ml.m5.large, vcpus: 2, memoryGiB: 8, purpose: general, hourlyUSD: 0.2}
  - name: ml.g6.xlarge
    vcpus: 4
    memoryGiB: 16
    accelerator: {kind: gpu, count: 1, name: NVIDIA L4}
    purpose: gpu-inference
    hourlyUSD: 1.0
`
	m, err := c.Merge(strings.NewReader(override))
	if err != nil {
		t.Fatal(err)
	}
	if ty, _ := m.Lookup("ml.m5.large"); ty.HourlyUSD != 0.2 {
		t.Errorf("replaced price = %v, want 0.2", ty.HourlyUSD)
	}
	if ty, _ := c.Lookup("ml.m5.large"); ty.HourlyUSD == 0.2 {
		t.Error("Merge changed the original catalog")
	}
	if _, err := m.Lookup("ml.g6.xlarge"); err != nil {
		t.Errorf("added type: %v", err)
	}
	if len(m.Names()) != len(c.Names())+1 || m.Region() != "us-east-1" || m.AsOf() != "2026-06" {
		t.Errorf("merged: %d names, region %q, asOf %q", len(m.Names()), m.Region(), m.AsOf())
	}
	// JSON is YAML too.
	if _, err := c.Merge(strings.NewReader(`{"types":[{"name":"ml.x.large","vcpus":1,"memoryGiB":1,"purpose":"general","hourlyUSD":0}]}`)); err != nil {
		t.Errorf("JSON override: %v", err)
	}
}

func TestBadOverrides(t *testing.T) {
	c := mustDefault(t)
	tests := []struct{ name, doc, want string }{
		{"bad name", `types: [{name: m5.large, vcpus: 2, memoryGiB: 8, purpose: general}]`, `name "m5.large"`},
		{"no vcpus", `types: [{name: ml.a.b, memoryGiB: 8, purpose: general}]`, "vcpus 0"},
		{"no memory", `types: [{name: ml.a.b, vcpus: 1, purpose: general}]`, "memoryGiB 0"},
		{"bad purpose", `types: [{name: ml.a.b, vcpus: 1, memoryGiB: 1, purpose: fun}]`, `purpose "fun"`},
		{"negative price", `types: [{name: ml.a.b, vcpus: 1, memoryGiB: 1, purpose: general, hourlyUSD: -1}]`, "hourlyUSD -1"},
		{"bad kind", `types: [{name: ml.a.b, vcpus: 1, memoryGiB: 1, purpose: general, accelerator: {kind: tpu, count: 1, name: x}}]`, `accelerator.kind "tpu"`},
		{"unknown field", `types: [{name: ml.a.b, vcpu: 1}]`, "vcpu"},
		{"twice", `types: [{name: ml.a.b, vcpus: 1, memoryGiB: 1, purpose: general}, {name: ml.a.b, vcpus: 1, memoryGiB: 1, purpose: general}]`, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Merge(strings.NewReader(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestThreads(t *testing.T) {
	c := mustDefault(t)
	xl, _ := c.Lookup("ml.m5.xlarge")
	for _, tt := range []struct{ node, want int }{{16, 4}, {4, 4}, {2, 2}, {1, 1}, {0, 1}} {
		if got := xl.Threads(tt.node); got != tt.want {
			t.Errorf("ml.m5.xlarge.Threads(%d) = %d, want %d", tt.node, got, tt.want)
		}
	}
	if got := xl.MemoryBytes(); got != 16<<30 {
		t.Errorf("MemoryBytes = %d, want 16 GiB", got)
	}
}
