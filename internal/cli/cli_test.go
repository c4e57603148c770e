package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/inferbox/inferbox/internal/api/native"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/cli"
	"github.com/inferbox/inferbox/internal/config"
	"github.com/inferbox/inferbox/internal/server"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// startServer runs the real server in-process on a loopback port with a
// fresh data directory and returns its URL.
func startServer(t *testing.T, change func(*config.Config)) string {
	t.Helper()
	cfg := config.Default()
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = config.Duration(10 * time.Second)
	cfg.Autoscale.Period = config.Duration(time.Second)
	cfg.Autoscale.Tick = config.Duration(100 * time.Millisecond)
	if change != nil {
		change(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// inferbox runs the CLI against a server.
type inferbox struct {
	t      *testing.T
	server string
	extra  []string
}

type result struct {
	stdout, stderr string
	err            error
}

func (r result) code() int { return cli.ExitCode(r.err) }

func (ib inferbox) run(stdin string, args ...string) result {
	ib.t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append(append(args, "--server", ib.server, "--poll-interval", "20ms"), ib.extra...)
	err := cli.ExecuteWith(ctx, args, strings.NewReader(stdin), &out, &errb)
	return result{out.String(), errb.String(), err}
}

// ok runs a command that must succeed and returns its stdout.
func (ib inferbox) ok(args ...string) string {
	ib.t.Helper()
	r := ib.run("", args...)
	if r.err != nil {
		ib.t.Fatalf("inferbox %s: %v\nstderr:\n%s", strings.Join(args, " "), r.err, r.stderr)
	}
	return r.stdout
}

// fails runs a command that must fail with exit status code and returns its error text.
func (ib inferbox) fails(code int, args ...string) string {
	ib.t.Helper()
	r := ib.run("", args...)
	if r.err == nil {
		ib.t.Fatalf("inferbox %s succeeded, want an error; stdout:\n%s", strings.Join(args, " "), r.stdout)
	}
	if r.code() != code {
		ib.t.Fatalf("inferbox %s: exit status %d, want %d (%v)", strings.Join(args, " "), r.code(), code, r.err)
	}
	return r.err.Error()
}

var (
	ages  = regexp.MustCompile(`\b(\d+[smhd] ago|just now)`)
	times = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
)

// golden compares out, with times and the checkout's path normalised and
// the columns re-aligned after that, to testdata/name.golden.
func golden(t *testing.T, name, out string) {
	t.Helper()
	out = times.ReplaceAllString(ages.ReplaceAllString(out, "<age>"), "<time>")
	if root, err := filepath.Abs("../.."); err == nil {
		out = strings.ReplaceAll(out, root, "<repo>")
	}
	out = realign(out)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if out != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, path, out, want)
	}
}

var gap = regexp.MustCompile(`\s{2,}`)

// realign re-aligns columns separated by two or more spaces.
func realign(s string) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 3, ' ', 0)
	for _, line := range strings.SplitAfter(s, "\n") {
		if line == "" {
			continue
		}
		if strings.TrimSpace(line) == "" {
			_ = tw.Flush()
			b.WriteString(line)
			continue
		}
		fmt.Fprintln(tw, gap.ReplaceAllString(strings.TrimRight(line, " \n"), "\t"))
	}
	_ = tw.Flush()
	return b.String()
}

func exampleModel(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../examples/xgboost/model")
	if err != nil {
		t.Fatal(err)
	}
	return "file://" + dir
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// checkPredictions compares the model's scores to the expected ones.
func checkPredictions(t *testing.T, got string) {
	t.Helper()
	want := readLines(t, "../../examples/xgboost/sample.expected")
	fields := strings.FieldsFunc(got, func(r rune) bool { return r == '\n' || r == ',' || r == ' ' || r == '\r' })
	if len(fields) != len(want) {
		t.Fatalf("got %d predictions %q, want %d", len(fields), got, len(want))
	}
	for i := range want {
		g, err1 := strconv.ParseFloat(fields[i], 64)
		w, err2 := strconv.ParseFloat(want[i], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("prediction %d: %q vs %q", i, fields[i], want[i])
		}
		if d := g - w; d > 1e-6 || d < -1e-6 {
			t.Errorf("prediction %d = %v, want %v", i, g, w)
		}
	}
}

// TestLifecycle deploys the example XGBoost model, invokes it, looks at it
// every way, scales, autoscales, updates and deletes it, through the CLI.
func TestLifecycle(t *testing.T) {
	ib := inferbox{t: t, server: startServer(t, nil)}

	r := ib.run("", "deploy", "xgb", "--image", "xgboost", "--model-data", exampleModel(t),
		"--instance-type", "ml.m5.large", "--count", "1", "--wait")
	if r.err != nil {
		t.Fatalf("deploy: %v\n%s", r.err, r.stderr)
	}
	if !strings.Contains(r.stdout, "Endpoint xgb is InService") {
		t.Errorf("deploy stdout:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "endpoint xgb: InService (1/1 instances)") {
		t.Errorf("deploy progress on stderr:\n%s", r.stderr)
	}

	t.Run("invoke", func(t *testing.T) {
		checkPredictions(t, ib.ok("invoke", "xgb", "--content-type", "text/csv", "--file", "../../examples/xgboost/sample.csv"))
		sample, err := os.ReadFile("../../examples/xgboost/sample.csv")
		if err != nil {
			t.Fatal(err)
		}
		r := ib.run(string(sample), "invoke", "xgb", "--variant", "AllTraffic")
		if r.err != nil {
			t.Fatal(r.err)
		}
		checkPredictions(t, r.stdout)
		first := strings.SplitN(string(sample), "\n", 2)[0]
		var js struct {
			Predictions []struct{ Score float64 } `json:"predictions"`
		}
		if err := json.Unmarshal([]byte(ib.ok("invoke", "xgb", "--body", first, "--accept", "application/json")), &js); err != nil {
			t.Fatal(err)
		}
		want, _ := strconv.ParseFloat(readLines(t, "../../examples/xgboost/sample.expected")[0], 64)
		if len(js.Predictions) != 1 || js.Predictions[0].Score-want > 1e-6 || want-js.Predictions[0].Score > 1e-6 {
			t.Errorf("JSON prediction %+v, want score %v", js.Predictions, want)
		}
	})

	t.Run("tables", func(t *testing.T) {
		golden(t, "model-list", ib.ok("model", "list"))
		golden(t, "endpoint-config-describe", ib.ok("endpoint-config", "describe", "xgb"))
		golden(t, "endpoint-list", ib.ok("endpoint", "list"))
		golden(t, "endpoint-describe", ib.ok("endpoint", "describe", "xgb"))
	})

	t.Run("json", func(t *testing.T) {
		var list native.EndpointList
		if err := json.Unmarshal([]byte(ib.ok("endpoint", "list", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Endpoints) != 1 || list.Endpoints[0].EndpointStatus != "InService" || list.Endpoints[0].ProductionVariants[0].CurrentInstanceCount != 1 {
			t.Errorf("endpoint list --json: %+v", list.Endpoints)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(ib.ok("model", "describe", "xgb", "--json")), &m); err != nil {
			t.Fatal(err)
		}
		if m["ModelName"] != "xgb" {
			t.Errorf("model describe --json: %v", m)
		}
	})

	t.Run("errors", func(t *testing.T) {
		msg := ib.fails(1, "endpoint", "describe", "nope")
		if msg != `Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/nope".` {
			t.Errorf("describe unknown endpoint: %q", msg)
		}
		if msg := ib.fails(1, "invoke", "nope", "--body", "1,2"); msg != "Endpoint nope of account 123456789012 not found." {
			t.Errorf("invoke unknown endpoint: %q", msg)
		}
		msg = ib.fails(1, "endpoint-config", "create", "bad", "--model", "xgb", "--instance-type", "ml.nope.large")
		if !strings.HasPrefix(msg, "1 validation error detected: Value 'ml.nope.large' at 'productionVariants.1.member.instanceType' failed to satisfy constraint: Member must satisfy enum value set: [") {
			t.Errorf("bad instance type: %q", msg)
		}
		if msg := ib.fails(1, "invoke", "xgb", "--body", "1,2,3"); !strings.Contains(msg, "from primary with message") {
			t.Errorf("bad input: %q", msg)
		}
		ib.fails(2, "endpoint", "create")
		ib.fails(2, "endpoint", "create", "x")
		ib.fails(2, "model", "list", "--no-such-flag")
	})

	t.Run("autoscaling", func(t *testing.T) {
		ib.ok("autoscaling", "set", "xgb", "--variant", "AllTraffic", "--min", "1", "--max", "4", "--target", "70",
			"--scale-in-cooldown", "600", "--scale-out-cooldown", "60")
		golden(t, "autoscaling-describe", ib.ok("autoscaling", "describe", "xgb", "--variant", "AllTraffic"))
		var a native.Autoscaling
		if err := json.Unmarshal([]byte(ib.ok("autoscaling", "describe", "xgb", "--json")), &a); err != nil {
			t.Fatal(err)
		}
		if a.ScalableTarget.MaxCapacity != 4 || len(a.ScalingPolicies) != 1 || a.ScalingPolicies[0].TargetTrackingScalingPolicyConfiguration.TargetValue != 70 {
			t.Errorf("autoscaling describe --json: %+v", a)
		}
		ib.ok("autoscaling", "activities", "xgb")
		msg := ib.fails(1, "autoscaling", "set", "xgb", "--variant", "Nope", "--min", "1", "--max", "2")
		if msg != "The variant Nope does not exist on endpoint xgb." {
			t.Errorf("autoscaling unknown variant: %q", msg)
		}
		ib.ok("autoscaling", "delete", "xgb")
		if msg := ib.fails(1, "autoscaling", "describe", "xgb"); !strings.HasPrefix(msg, "No scalable target registered") {
			t.Errorf("describe after delete: %q", msg)
		}
	})

	t.Run("scale", func(t *testing.T) {
		ib.ok("endpoint", "scale", "xgb", "--variant", "AllTraffic", "--count", "2", "--weight", "3", "--wait")
		golden(t, "endpoint-describe-scaled", ib.ok("endpoint", "describe", "xgb"))
	})

	t.Run("update", func(t *testing.T) {
		ib.ok("endpoint-config", "create", "xgb-v2",
			"--variant-spec", "name=Blue,model=xgb,type=ml.m5.large,count=1,weight=1",
			"--variant-spec", "name=Green,model=xgb,type=ml.c5.xlarge,count=1,weight=2,routing=RANDOM")
		golden(t, "endpoint-config-describe-v2", ib.ok("endpoint-config", "describe", "xgb-v2"))
		ib.ok("endpoint", "update", "xgb", "--config", "xgb-v2", "--wait")
		golden(t, "endpoint-describe-updated", ib.ok("endpoint", "describe", "xgb"))
		checkPredictions(t, ib.ok("invoke", "xgb", "--variant", "Green", "--file", "../../examples/xgboost/sample.csv"))
	})

	t.Run("config from file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "config.json")
		doc := `{"ProductionVariants":[{"VariantName":"A","ModelName":"xgb","InstanceType":"ml.m5.large","InitialInstanceCount":3,"InitialVariantWeight":0.5}]}`
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		ib.ok("endpoint-config", "create", "from-file", "--file", path)
		var ec catalog.EndpointConfig
		if err := json.Unmarshal([]byte(ib.ok("endpoint-config", "describe", "from-file", "--json")), &ec); err != nil {
			t.Fatal(err)
		}
		if len(ec.ProductionVariants) != 1 || *ec.ProductionVariants[0].InitialInstanceCount != 3 || *ec.ProductionVariants[0].InitialVariantWeight != 0.5 {
			t.Errorf("config from file: %+v", ec.ProductionVariants)
		}
		ib.ok("endpoint-config", "delete", "from-file")
	})

	t.Run("delete", func(t *testing.T) {
		if out := ib.ok("endpoint", "delete", "xgb", "--wait"); out != "Deleted endpoint xgb\n" {
			t.Errorf("delete stdout: %q", out)
		}
		golden(t, "endpoint-list-empty", ib.ok("endpoint", "list"))
		ib.ok("endpoint-config", "delete", "xgb")
		ib.ok("model", "delete", "xgb")
	})
}

// TestFailedEndpoint: --wait on an endpoint whose model cannot load exits
// non-zero with the FailureReason.
func TestFailedEndpoint(t *testing.T) {
	ib := inferbox{t: t, server: startServer(t, nil)}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "xgboost-model"), []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	msg := ib.fails(1, "deploy", "broken", "--image", "xgboost", "--model-data", "file://"+dir, "--instance-type", "ml.m5.large", "--wait")
	if !strings.HasPrefix(msg, "endpoint broken failed: ") {
		t.Errorf("deploy --wait of a broken model: %q", msg)
	}
	out := ib.ok("endpoint", "describe", "broken")
	if !strings.Contains(out, "Status:          Failed") || !strings.Contains(out, "Failure reason:") {
		t.Errorf("describe of a failed endpoint:\n%s", out)
	}
}

// TestAccessKeys: with auth.access_keys configured the API wants the
// bearer credential the CLI sends from --access-key.
func TestAccessKeys(t *testing.T) {
	url := startServer(t, func(c *config.Config) {
		c.Auth.AccessKeys = map[string]string{"AKIDTEST": "s3cret"}
	})
	ib := inferbox{t: t, server: url}
	if msg := ib.fails(1, "model", "list"); !strings.HasPrefix(msg, "Missing credentials") {
		t.Errorf("no key: %q", msg)
	}
	if msg := ib.fails(1, "model", "list", "--access-key", "AKIDTEST:wrong"); msg != "The access key or secret is not valid." {
		t.Errorf("wrong secret: %q", msg)
	}
	ib.ok("model", "list", "--access-key", "AKIDTEST:s3cret")
	var e *native.Error
	_, err := native.NewClient(url, "", nil).ListModels(context.Background())
	if !errors.As(err, &e) || e.Status != 401 || e.Code != "Unauthorized" {
		t.Errorf("client error: %#v", err)
	}
}
