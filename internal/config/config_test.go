package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "inferbox.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsValidate(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Hosting.MaxPayloadBytes != 6291456 || c.Hosting.InvocationTimeout.D() != time.Minute {
		t.Errorf("SageMaker limits changed: %+v", c.Hosting)
	}
	if h := c.Hosting; h.HealthCheckInterval.D() != 10*time.Second || h.HealthCheckTimeout.D() != 2*time.Second || h.UnhealthyThreshold != 3 {
		t.Errorf("health-check defaults changed: %v, %v, %d", h.HealthCheckInterval.D(), h.HealthCheckTimeout.D(), h.UnhealthyThreshold)
	}
	if c.Autoscale.ScaleOutDatapoints != 3 || c.Autoscale.ScaleInDatapoints != 15 || c.Autoscale.ScaleInCooldown.D() != 300*time.Second {
		t.Errorf("AWS autoscaling defaults changed: %+v", c.Autoscale)
	}
}

func TestLoadOverridesDefaults(t *testing.T) {
	c, err := Load(write(t, "listen: 127.0.0.1:9999\nhosting:\n  queue_timeout: 5s\n  health_check_interval: 1s\n  unhealthy_threshold: 2\nautoscale:\n  period: 2s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9999" || c.Hosting.QueueTimeout.D() != 5*time.Second || c.Autoscale.Period.D() != 2*time.Second {
		t.Fatalf("loaded %+v", c)
	}
	if c.Hosting.MaxPayloadBytes != 6291456 {
		t.Fatalf("unset key lost its default: %d", c.Hosting.MaxPayloadBytes)
	}
	if c.Hosting.HealthCheckInterval.D() != time.Second || c.Hosting.UnhealthyThreshold != 2 || c.Hosting.HealthCheckTimeout.D() != 2*time.Second {
		t.Fatalf("health-check keys: %+v", c.Hosting)
	}
}

func TestLoadEmptyFile(t *testing.T) {
	if _, err := Load(write(t, "")); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrorsNameTheProblem(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"listne: x\n", "listne"},
		{"hosting:\n  queue_timeout: soon\n", `"soon" is not a duration`},
	} {
		_, err := Load(write(t, tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%q) error = %v, want it to mention %q", tc.body, err, tc.want)
		}
	}
}

func TestValidateNamesKeyAndValue(t *testing.T) {
	for _, tc := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Listen = "0.0.0.0:80" }, "listen = 0.0.0.0:80: listening beyond loopback needs auth.access_keys"},
		{func(c *Config) { c.Listen = "nonsense" }, "listen = nonsense: want host:port"},
		{func(c *Config) { c.Hosting.QueueLimit = -1 }, "hosting.queue_limit = -1"},
		{func(c *Config) { c.Log = "xml" }, "log = xml"},
		{func(c *Config) { c.AccountID = "42" }, "account_id = 42"},
		{func(c *Config) { c.Node.VCPUs = 0 }, "node.vcpus = 0"},
		{func(c *Config) { c.Hosting.HealthCheckInterval = 0 }, "hosting.health_check_interval = 0s: must be positive"},
		{func(c *Config) { c.Hosting.HealthCheckTimeout = Duration(time.Minute) }, "hosting.health_check_timeout = 1m0s: must be positive and at most hosting.health_check_interval"},
		{func(c *Config) { c.Hosting.HealthCheckTimeout = -1 }, "hosting.health_check_timeout = -1ns"},
		{func(c *Config) { c.Hosting.UnhealthyThreshold = 0 }, "hosting.unhealthy_threshold = 0: must be at least 1"},
	} {
		c := Default()
		tc.change(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
	c := Default()
	c.Listen = "0.0.0.0:80"
	c.Auth.AccessKeys = map[string]string{"AKID": "secret"}
	if err := c.Validate(); err != nil {
		t.Errorf("non-loopback with access keys: %v", err)
	}
}

func TestFoundationModels(t *testing.T) {
	c, err := Load(write(t, "foundation_models:\n  - id: meta.a\n    path: /m/a.gguf\n    chat_format: raw\ngenai:\n  max_instances: 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.FoundationModels) != 1 || c.FoundationModels[0] != (FoundationModel{ID: "meta.a", Path: "/m/a.gguf", ChatFormat: "raw"}) ||
		c.GenAI.MaxInstances != 3 || c.GenAI.Concurrency != 4 {
		t.Fatalf("loaded %+v %+v", c.FoundationModels, c.GenAI)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	fm, err := ParseFoundationModel("meta.b=/m/b.gguf")
	if err != nil || fm != (FoundationModel{ID: "meta.b", Path: "/m/b.gguf"}) {
		t.Errorf("ParseFoundationModel: %+v %v", fm, err)
	}
	for _, bad := range []string{"meta.b", "=/m/b.gguf", "meta.b="} {
		if _, err := ParseFoundationModel(bad); err == nil || !strings.Contains(err.Error(), "want ID=PATH") {
			t.Errorf("ParseFoundationModel(%q) = %v", bad, err)
		}
	}
	for _, tc := range []struct {
		models []FoundationModel
		want   string
	}{
		{[]FoundationModel{{ID: "a", Path: "p"}, {ID: "a", Path: "q"}}, "foundation_models[1].id = a: registered twice"},
		{[]FoundationModel{{Path: "p"}}, "foundation_models[0].id"},
		{[]FoundationModel{{ID: "a"}}, "foundation_models[0].path"},
		{[]FoundationModel{{ID: "a", Path: "p", ChatFormat: "alpaca"}}, "foundation_models[0].chat_format = alpaca"},
	} {
		c := Default()
		c.FoundationModels = tc.models
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.models, err, tc.want)
		}
	}
}
