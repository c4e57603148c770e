package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// reopen opens the catalog at path again, as a restart does (closed when
// the test ends).
func reopen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func at(sec int64, ms int64) Time { return Time{time.UnixMilli(sec*1000 + ms).UTC()} }

func TestModelCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	m := &Model{
		ModelName:        "My-Model",
		ModelArn:         "arn:aws:sagemaker:us-east-1:000000000000:model/my-model",
		PrimaryContainer: &ContainerDefinition{Image: "xgboost", ModelDataUrl: "file:///m.tar.gz", Environment: map[string]string{"A": "1"}},
		CreationTime:     at(1700000000, 123),
		Tags:             []Tag{{Key: "k", Value: "v"}},
	}
	if err := s.CreateModel(ctx, m); err != nil {
		t.Fatalf("CreateModel: %v", err)
	}
	for _, name := range []string{"My-Model", "my-model", "MY-MODEL"} {
		got, err := s.GetModel(ctx, name)
		if err != nil {
			t.Fatalf("GetModel(%q): %v", name, err)
		}
		if got.ModelName != "My-Model" {
			t.Errorf("GetModel(%q).ModelName = %q, want the stored case My-Model", name, got.ModelName)
		}
		a, _ := json.Marshal(m)
		b, _ := json.Marshal(got)
		if string(a) != string(b) {
			t.Errorf("round trip:\n got %s\nwant %s", b, a)
		}
	}
	err := s.CreateModel(ctx, &Model{ModelName: "my-MODEL", CreationTime: Now()})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("CreateModel differing only in case: err = %v, want ErrExists", err)
	}
	if _, err := s.GetModel(ctx, "other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetModel(other): err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteModel(ctx, "my-model"); err != nil {
		t.Fatalf("DeleteModel: %v", err)
	}
	if err := s.DeleteModel(ctx, "my-model"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteModel: err = %v, want ErrNotFound", err)
	}
	if _, err := s.GetModel(ctx, "My-Model"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetModel after delete: err = %v, want ErrNotFound", err)
	}
	if err := s.CreateModel(ctx, &Model{ModelName: ""}); err == nil {
		t.Fatal("CreateModel with an empty name succeeded")
	}
}

func TestListOrderedByCreationTime(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	// Insert out of order; same-time records keep insertion order.
	for _, c := range []struct {
		name string
		t    Time
	}{{"c", at(300, 0)}, {"a", at(100, 0)}, {"b2", at(200, 0)}, {"b1", at(200, 0)}} {
		if err := s.CreateEndpointConfig(ctx, &EndpointConfig{EndpointConfigName: c.name, CreationTime: c.t,
			ProductionVariants: []ProductionVariant{{VariantName: "v", InstanceType: "ml.m5.large"}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateModel(ctx, &Model{ModelName: c.name, CreationTime: c.t}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateEndpoint(ctx, &Endpoint{EndpointName: c.name, CreationTime: c.t, EndpointStatus: StatusCreating}); err != nil {
			t.Fatal(err)
		}
	}
	want := "a b2 b1 c"
	cs, err := s.ListEndpointConfigs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := s.ListModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	es, err := s.ListEndpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var gotC, gotM, gotE []string
	for i := range cs {
		gotC = append(gotC, cs[i].EndpointConfigName)
		gotM = append(gotM, ms[i].ModelName)
		gotE = append(gotE, es[i].EndpointName)
	}
	for what, got := range map[string][]string{"configs": gotC, "models": gotM, "endpoints": gotE} {
		if g := strings.Join(got, " "); g != want {
			t.Errorf("%s order = %q, want %q", what, g, want)
		}
	}
}

func TestEndpointConfigCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	n := 2
	c := &EndpointConfig{EndpointConfigName: "Cfg", CreationTime: Now(),
		ProductionVariants: []ProductionVariant{{VariantName: "AllTraffic", ModelName: "m", InitialInstanceCount: &n, InstanceType: "ml.m5.xlarge"}}}
	if err := s.CreateEndpointConfig(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateEndpointConfig(ctx, &EndpointConfig{EndpointConfigName: "cfg"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate config: err = %v, want ErrExists", err)
	}
	got, err := s.GetEndpointConfig(ctx, "CFG")
	if err != nil {
		t.Fatal(err)
	}
	if got.EndpointConfigName != "Cfg" || *got.ProductionVariants[0].InitialInstanceCount != 2 {
		t.Fatalf("got %+v", got)
	}
	if err := s.DeleteEndpointConfig(ctx, "cfg"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetEndpointConfig(ctx, "Cfg"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteEndpointConfig(ctx, "cfg"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: err = %v, want ErrNotFound", err)
	}
}

func TestEndpointPut(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	e := &Endpoint{EndpointName: "Ep", EndpointConfigName: "c", EndpointStatus: StatusCreating, CreationTime: at(1000, 1)}
	if err := s.CreateEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateEndpoint(ctx, &Endpoint{EndpointName: "EP"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate endpoint: err = %v, want ErrExists", err)
	}
	e.EndpointStatus = StatusInService
	e.LastModifiedTime = at(2000, 2)
	e.Variants = []VariantState{{VariantName: "AllTraffic", DesiredInstanceCount: 3, DesiredWeight: 1}}
	if err := s.PutEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetEndpoint(ctx, "ep")
	if err != nil {
		t.Fatal(err)
	}
	if got.EndpointStatus != StatusInService || got.Variants[0].DesiredInstanceCount != 3 || !got.LastModifiedTime.Equal(at(2000, 2).Time) {
		t.Fatalf("after put: %+v", got)
	}
	var status string
	if err := s.DB().QueryRowContext(ctx, `SELECT status FROM endpoints WHERE name_key = 'ep'`).Scan(&status); err != nil || status != StatusInService {
		t.Fatalf("status column = %q, %v; want InService", status, err)
	}
	if err := s.PutEndpoint(ctx, &Endpoint{EndpointName: "missing"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("put missing: err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteEndpoint(ctx, "EP"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteEndpoint(ctx, "EP"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: err = %v, want ErrNotFound", err)
	}
}

const (
	ns  = "sagemaker"
	dim = "sagemaker:variant:DesiredInstanceCount"
	rid = "endpoint/ep/variant/AllTraffic"
)

func TestScalableTargetsAndPolicies(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)

	p := &ScalingPolicy{PolicyName: "p1", ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim,
		PolicyType: "TargetTrackingScaling", CreationTime: at(10, 0),
		TargetTrackingScalingPolicyConfiguration: &TargetTrackingConfig{TargetValue: 70,
			PredefinedMetricSpecification: &PredefinedMetricSpecification{PredefinedMetricType: "SageMakerVariantInvocationsPerInstance"}}}
	if err := s.PutScalingPolicy(ctx, p); !errors.Is(err, ErrNotFound) {
		t.Fatalf("policy without target: err = %v, want ErrNotFound", err)
	}

	tg := &ScalableTarget{ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim, MinCapacity: 1, MaxCapacity: 4, CreationTime: at(5, 500)}
	if err := s.PutScalableTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	upd := &ScalableTarget{ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim, MinCapacity: 2, MaxCapacity: 8, CreationTime: at(99, 0)}
	if err := s.PutScalableTarget(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if !upd.CreationTime.Equal(at(5, 500).Time) {
		t.Errorf("PutScalableTarget did not write back the stored CreationTime: %v", upd.CreationTime)
	}
	got, err := s.GetScalableTarget(ctx, ns, rid, dim)
	if err != nil {
		t.Fatal(err)
	}
	if got.MinCapacity != 2 || got.MaxCapacity != 8 || !got.CreationTime.Equal(at(5, 500).Time) {
		t.Fatalf("updated target = %+v; want min 2 max 8, creation kept", got)
	}
	if _, err := s.GetScalableTarget(ctx, ns, "endpoint/EP/variant/AllTraffic", dim); !errors.Is(err, ErrNotFound) {
		t.Fatalf("target keys are exact: err = %v, want ErrNotFound", err)
	}
	other := &ScalableTarget{ServiceNamespace: "ecs", ResourceId: "service/c/s", ScalableDimension: "ecs:service:DesiredCount", CreationTime: at(1, 0)}
	if err := s.PutScalableTarget(ctx, other); err != nil {
		t.Fatal(err)
	}
	if ts, err := s.ListScalableTargets(ctx, ns); err != nil || len(ts) != 1 || ts[0].ResourceId != rid {
		t.Fatalf("ListScalableTargets(sagemaker) = %v, %v", ts, err)
	}
	if ts, err := s.ListScalableTargets(ctx, ""); err != nil || len(ts) != 2 || ts[0].ServiceNamespace != "ecs" {
		t.Fatalf("ListScalableTargets(all) = %v, %v; want 2, ecs first", ts, err)
	}

	if err := s.PutScalingPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.TargetTrackingScalingPolicyConfiguration.TargetValue = 100
	if err := s.PutScalingPolicy(ctx, p); err != nil {
		t.Fatalf("replace policy: %v", err)
	}
	p2 := *p
	p2.PolicyName = "p2"
	if err := s.PutScalingPolicy(ctx, &p2); err != nil {
		t.Fatal(err)
	}
	gp, err := s.GetScalingPolicy(ctx, ns, rid, dim, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if gp.TargetTrackingScalingPolicyConfiguration.TargetValue != 100 {
		t.Fatalf("replaced policy target value = %v, want 100", gp.TargetTrackingScalingPolicyConfiguration.TargetValue)
	}
	if ps, err := s.ListScalingPolicies(ctx, ns); err != nil || len(ps) != 2 {
		t.Fatalf("ListScalingPolicies = %v, %v; want 2", ps, err)
	}
	if err := s.DeleteScalingPolicy(ctx, ns, rid, dim, "p2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteScalingPolicy(ctx, ns, rid, dim, "p2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second policy delete: err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteScalableTarget(ctx, ns, rid, dim); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetScalingPolicy(ctx, ns, rid, dim, "p1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("policy after its target was deleted: err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteScalableTarget(ctx, ns, rid, dim); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second target delete: err = %v, want ErrNotFound", err)
	}
}

func TestPersistenceAcrossReopen(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	ct := at(1712345678, 901)
	if err := s.CreateEndpoint(ctx, &Endpoint{EndpointName: "Persist", EndpointStatus: StatusInService, CreationTime: ct, LastModifiedTime: ct}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutScalableTarget(ctx, &ScalableTarget{ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim, MaxCapacity: 3, CreationTime: ct}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	e, err := s2.GetEndpoint(ctx, "persist")
	if err != nil {
		t.Fatal(err)
	}
	if e.EndpointName != "Persist" || e.EndpointStatus != StatusInService || !e.CreationTime.Equal(ct.Time) {
		t.Fatalf("after reopen: %+v", e)
	}
	if _, err := s2.GetScalableTarget(ctx, ns, rid, dim); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := s2.DB().QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("user_version = %d, %v; want %d", v, err, len(migrations))
	}
	var mode string
	if err := s2.DB().QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := s2.DB().QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v; want 1", fk, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if _, err := s.DB().ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s2, err := Open(ctx, path); err == nil {
		s2.Close()
		t.Fatal("Open accepted a schema newer than it knows")
	}
}

func TestTimeRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for i, ct := range []Time{at(1700000000, 1), at(1700000000, 999), at(1700000000, 0), Now(), {}} {
		name := fmt.Sprintf("m%d", i)
		if err := s.CreateModel(ctx, &Model{ModelName: name, CreationTime: ct}); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetModel(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !got.CreationTime.Equal(ct.Time) {
			t.Errorf("CreationTime %v came back as %v", ct.Time, got.CreationTime.Time)
		}
	}
}

func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*3)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				name := fmt.Sprintf("ep-%d-%d", w, i)
				e := &Endpoint{EndpointName: name, EndpointStatus: StatusCreating, CreationTime: Now()}
				if err := s.CreateEndpoint(ctx, e); err != nil {
					errs <- err
					continue
				}
				e.EndpointStatus = StatusInService
				if err := s.PutEndpoint(ctx, e); err != nil {
					errs <- err
				}
				id := "endpoint/" + name + "/variant/v"
				if err := s.PutScalableTarget(ctx, &ScalableTarget{ServiceNamespace: ns, ResourceId: id, ScalableDimension: dim, CreationTime: Now()}); err != nil {
					errs <- err
				}
				// Everyone races for the same shared name too.
				if err := s.CreateModel(ctx, &Model{ModelName: "shared", CreationTime: Now()}); err != nil && !errors.Is(err, ErrExists) {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	es, err := s.ListEndpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != writers*each {
		t.Fatalf("endpoints = %d, want %d", len(es), writers*each)
	}
	for _, e := range es {
		if e.EndpointStatus != StatusInService {
			t.Fatalf("endpoint %s status %s, want InService", e.EndpointName, e.EndpointStatus)
		}
	}
	if ms, err := s.ListModels(ctx); err != nil || len(ms) != 1 {
		t.Fatalf("models = %d, %v; want exactly one winner", len(ms), err)
	}
}

// Two stores on one file stand for two processes: the busy timeout, not
// luck, keeps them from failing with "database is locked".
func TestTwoHandlesOneFile(t *testing.T) {
	ctx := context.Background()
	a, path := openTemp(t)
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for h, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if err := s.CreateModel(ctx, &Model{ModelName: fmt.Sprintf("m-%d-%d", h, i), CreationTime: Now()}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("write from two handles: %v", err)
	}
	if ms, err := a.ListModels(ctx); err != nil || len(ms) != 200 {
		t.Fatalf("models = %d, %v; want 200", len(ms), err)
	}
}
