// Package config is inferbox's configuration: one typed struct with its
// defaults in one place, loaded from a YAML file, overridden by flags, and
// validated once at start-up with errors that name the key and the value.
//
// config imports nothing from inferbox.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration. YAML keys are the snake_case names.
type Config struct {
	// Listen is the address of the one listener every protocol shares.
	Listen string `yaml:"listen"`
	// Data is the data directory: catalog, artifact cache, ledger.
	Data string `yaml:"data"`
	// Log is "auto" (text on a terminal, JSON otherwise), "text" or "json".
	Log      string `yaml:"log"`
	LogLevel string `yaml:"log_level"`
	// Region and AccountID appear in ARNs and messages.
	Region    string `yaml:"region"`
	AccountID string `yaml:"account_id"`
	// Examples deploys the bundled example models on start.
	Examples bool `yaml:"examples"`

	Auth      Auth      `yaml:"auth"`
	Node      Node      `yaml:"node"`
	Hosting   Hosting   `yaml:"hosting"`
	Autoscale Autoscale `yaml:"autoscale"`
	Storage   Storage   `yaml:"storage"`
	Queue     Queue     `yaml:"queue"`
	Async     Async     `yaml:"async"`
	// Pricebook is a price-book override file (internal/pricebook format)
	// merged over the shipped defaults; empty uses the defaults.
	Pricebook string `yaml:"pricebook"`
	// FoundationModels are the GGUF models served through the Bedrock and
	// OpenAI APIs (flag: --foundation-model ID=PATH, repeatable).
	FoundationModels []FoundationModel `yaml:"foundation_models"`
	GenAI            GenAI             `yaml:"genai"`
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// FoundationModel registers one foundation model.
type FoundationModel struct {
	ID   string `yaml:"id"`
	Path string `yaml:"path"` // a .gguf file
	// Provider is the catalog's providerName; empty derives it from the
	// id's prefix (meta.… → Meta) or the file's architecture.
	Provider string `yaml:"provider"`
	// ChatFormat is template, llama2, chatml or raw; empty uses the file's
	// tokenizer.chat_template, else a built-in fallback for the family.
	ChatFormat string `yaml:"chat_format"`
}

// ParseFoundationModel parses a --foundation-model value, ID=PATH.
func ParseFoundationModel(v string) (FoundationModel, error) {
	id, path, ok := strings.Cut(v, "=")
	if !ok || id == "" || path == "" {
		return FoundationModel{}, fmt.Errorf("--foundation-model = %q: want ID=PATH", v)
	}
	return FoundationModel{ID: id, Path: path}, nil
}

// GenAI configures the foundation-model service's pools.
type GenAI struct {
	// InstanceType sizes each model instance (threads, node capacity).
	InstanceType string `yaml:"instance_type"`
	// Concurrency is generations decoded together per instance.
	Concurrency int `yaml:"concurrency"`
	// MaxInstances caps each model's elastic pool.
	MaxInstances int `yaml:"max_instances"`
	// IdleTimeout stops an instance unused this long (scale to zero).
	IdleTimeout Duration `yaml:"idle_timeout"`
	// Quotas limit on-demand traffic per model and caller.
	Quotas GenAIQuotas `yaml:"quotas"`
	// ProvisionedQueue bounds the requests waiting per model unit of a
	// provisioned throughput before it throttles.
	ProvisionedQueue int `yaml:"provisioned_queue"`
}

// GenAIQuota is one on-demand quota: requests and tokens (input plus
// output, maxTokens reserved up front) per minute, per model and caller.
// Zero is unlimited.
type GenAIQuota struct {
	RequestsPerMinute int `yaml:"requests_per_minute"`
	TokensPerMinute   int `yaml:"tokens_per_minute"`
}

// GenAIQuotas are the default quota and per-model overrides.
type GenAIQuotas struct {
	GenAIQuota `yaml:",inline"`
	Models     map[string]GenAIQuota `yaml:"models"`
}

// Queue configures the durable work queue (NATS JetStream).
type Queue struct {
	// URL is an external NATS server or cluster; empty embeds a server in
	// the process with file storage under <data>/queue.
	URL string `yaml:"url"`
	// SyncAlways fsyncs every stored message (embedded server): survives
	// power loss, not only a process crash, at some enqueue throughput.
	SyncAlways bool `yaml:"sync_always"`
	// AckWait is a delivery's lease, extended while the work runs.
	AckWait Duration `yaml:"ack_wait"`
	// MaxDeliver bounds deliveries (model-error retries and crash
	// redeliveries) before a request fails.
	MaxDeliver int `yaml:"max_deliver"`
}

// Async configures asynchronous endpoints.
type Async struct {
	// IdleTimeout is how long an async instance may sit idle before it
	// stops (scale to zero).
	IdleTimeout Duration `yaml:"idle_timeout"`
	// RetryDelay is the first delay before a request whose model failed is
	// retried; it doubles each attempt.
	RetryDelay Duration `yaml:"retry_delay"`
	// MinRequestTTL is the lowest X-Amzn-SageMaker-RequestTTLSeconds
	// accepted (SageMaker: 60 s; tests lower it).
	MinRequestTTL Duration `yaml:"min_request_ttl"`
	// Topics maps SNS topic ARNs in NotificationConfig to webhook URLs.
	Topics map[string]string `yaml:"topics"`
	// NotifyAttempts bounds webhook deliveries of one notification.
	NotifyAttempts int `yaml:"notify_attempts"`
	// IndexRetention is how long a finished request's record stays in the
	// inference index (its status answers; older ids are unknown).
	IndexRetention Duration `yaml:"index_retention"`
	// CapacityPoll is how often worker slots are matched to the endpoints'
	// capacity (scale-out and scale-in).
	CapacityPoll Duration `yaml:"capacity_poll"`
}

// Auth configures request authentication.
type Auth struct {
	// AccessKeys maps access key ids to secret keys. When set, every AWS
	// request's SigV4 signature is verified.
	AccessKeys map[string]string `yaml:"access_keys"`
	// AllowAnonymous permits listening beyond loopback without access keys.
	AllowAnonymous bool `yaml:"allow_anonymous"`
}

// Node is this machine's capacity for instances.
type Node struct {
	// VCPUs that instances may reserve in total (default 8 × the CPUs, so a
	// laptop can host several ml.m5.xlarge instances of small models).
	VCPUs int `yaml:"vcpus"`
	// MemoryMiB that instances may reserve in total (default 64 GiB).
	MemoryMiB int64 `yaml:"memory_mib"`
	// EmulateAccelerators lets GPU/Inferentia/Trainium instance types be
	// placed on a node without them (they run on the CPU). On by default:
	// a SageMaker script that asks for ml.g5.xlarge should deploy locally.
	EmulateAccelerators bool `yaml:"emulate_accelerators"`
}

// Hosting configures real-time endpoints.
type Hosting struct {
	InstanceConcurrency int      `yaml:"instance_concurrency"`
	QueueLimit          int      `yaml:"queue_limit"`
	QueueTimeout        Duration `yaml:"queue_timeout"`
	InvocationTimeout   Duration `yaml:"invocation_timeout"`
	MaxPayloadBytes     int64    `yaml:"max_payload_bytes"`
	// Serverless variants.
	ServerlessIdleTimeout     Duration `yaml:"serverless_idle_timeout"`
	ServerlessStartTimeout    Duration `yaml:"serverless_start_timeout"`
	ServerlessMaxPayloadBytes int64    `yaml:"serverless_max_payload_bytes"`
	// Health checks of a bring-your-own model server once it is ready:
	// GET /ping every HealthCheckInterval, each within HealthCheckTimeout;
	// after UnhealthyThreshold failures in a row the server is replaced.
	HealthCheckInterval Duration `yaml:"health_check_interval"`
	HealthCheckTimeout  Duration `yaml:"health_check_timeout"`
	UnhealthyThreshold  int      `yaml:"unhealthy_threshold"`
}

// Autoscale configures target tracking; defaults are AWS's.
type Autoscale struct {
	Period             Duration `yaml:"period"`
	ScaleOutDatapoints int      `yaml:"scale_out_datapoints"`
	ScaleInDatapoints  int      `yaml:"scale_in_datapoints"`
	ScaleOutCooldown   Duration `yaml:"scale_out_cooldown"`
	ScaleInCooldown    Duration `yaml:"scale_in_cooldown"`
	Tick               Duration `yaml:"tick"`
}

// Storage configures object storage: where s3:// URIs lead.
type Storage struct {
	// S3 is "embedded" (the default: objects are files under
	// <data>/objects, served by the S3 API on the listener) or "external"
	// (s3:// URIs go to the service External names; the S3 API is off).
	S3       string          `yaml:"s3"`
	External ExternalStorage `yaml:"external"`
	// VirtualHostDomains are the host names under which <bucket>.<domain>
	// addresses a bucket of the embedded S3 API (virtual-host style).
	VirtualHostDomains []string `yaml:"virtual_host_domains"`
}

// ExternalStorage is an S3-compatible service. Credentials come from the
// standard AWS chain (environment, ~/.aws, SSO, container or instance role).
type ExternalStorage struct {
	// Region of the service; default: the top-level region.
	Region string `yaml:"region"`
	// Endpoint URL, e.g. http://minio:9000; empty: AWS's endpoints.
	Endpoint string `yaml:"endpoint"`
	// PathStyle addresses buckets as <endpoint>/<bucket>.
	PathStyle bool `yaml:"path_style"`
}

// Duration is a time.Duration written as "90s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 30s, 5m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Default returns the defaults.
func Default() Config {
	return Config{
		Listen:          "127.0.0.1:8080",
		Data:            defaultDataDir(),
		Log:             "auto",
		LogLevel:        "info",
		Region:          "us-east-1",
		AccountID:       "123456789012",
		ShutdownTimeout: Duration(30 * time.Second),
		Node: Node{
			VCPUs:               8 * goruntime.NumCPU(),
			MemoryMiB:           64 << 10,
			EmulateAccelerators: true,
		},
		Hosting: Hosting{
			InstanceConcurrency: 4,
			QueueLimit:          1024,
			QueueTimeout:        Duration(60 * time.Second),
			InvocationTimeout:   Duration(60 * time.Second),
			MaxPayloadBytes:     6291456,
			// Five minutes idle before scale to zero: long enough that a
			// burst's stragglers and a user's next try find a warm
			// instance, short enough that an idle model gives its memory
			// back within minutes (AWS does not document its own window).
			ServerlessIdleTimeout:     Duration(5 * time.Minute),
			ServerlessStartTimeout:    Duration(3 * time.Minute),
			ServerlessMaxPayloadBytes: 4 << 20,
			// SageMaker's /ping timeout is 2 s; it does not document how
			// often it checks a running instance or after how many
			// failures it replaces one. 10 s × 3 replaces a hung server
			// within about half a minute without reacting to one slow answer.
			HealthCheckInterval: Duration(10 * time.Second),
			HealthCheckTimeout:  Duration(2 * time.Second),
			UnhealthyThreshold:  3,
		},
		GenAI: GenAI{InstanceType: "ml.m5.large", Concurrency: 4, MaxInstances: 2, IdleTimeout: Duration(5 * time.Minute),
			Quotas: GenAIQuotas{GenAIQuota: GenAIQuota{RequestsPerMinute: 600, TokensPerMinute: 200_000}}, ProvisionedQueue: 32},
		Queue: Queue{AckWait: Duration(60 * time.Second), MaxDeliver: 3},
		Async: Async{
			IdleTimeout:    Duration(5 * time.Minute),
			RetryDelay:     Duration(time.Second),
			MinRequestTTL:  Duration(60 * time.Second),
			NotifyAttempts: 10,
			IndexRetention: Duration(7 * 24 * time.Hour),
			CapacityPoll:   Duration(2 * time.Second),
		},
		Storage: Storage{
			S3:                 "embedded",
			VirtualHostDomains: []string{"localhost"},
		},
		Autoscale: Autoscale{
			Period:             Duration(time.Minute),
			ScaleOutDatapoints: 3,
			ScaleInDatapoints:  15,
			ScaleOutCooldown:   Duration(300 * time.Second),
			ScaleInCooldown:    Duration(300 * time.Second),
			Tick:               Duration(10 * time.Second),
		},
	}
}

func defaultDataDir() string {
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".inferbox")
	}
	return ".inferbox"
}

// Load reads a YAML file over the defaults; unknown keys are errors.
func Load(path string) (Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Validate checks every setting once; the error names the key and value.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key string, v any, why string) {
		errs = append(errs, fmt.Errorf("config: %s = %v: %s", key, v, why))
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		bad("listen", c.Listen, "want host:port")
	} else if !isLoopback(host) && len(c.Auth.AccessKeys) == 0 && !c.Auth.AllowAnonymous {
		bad("listen", c.Listen, "listening beyond loopback needs auth.access_keys (or auth.allow_anonymous: true)")
	}
	if c.Data == "" {
		bad("data", c.Data, "must not be empty")
	}
	seen := map[string]bool{}
	for i, fm := range c.FoundationModels {
		key := fmt.Sprintf("foundation_models[%d]", i)
		switch {
		case fm.ID == "":
			bad(key+".id", fm.ID, "must not be empty")
		case seen[fm.ID]:
			bad(key+".id", fm.ID, "registered twice")
		case fm.Path == "":
			bad(key+".path", fm.Path, "must not be empty")
		}
		seen[fm.ID] = true
		switch fm.ChatFormat {
		case "", "template", "llama2", "chatml", "raw":
		default:
			bad(key+".chat_format", fm.ChatFormat, "want template, llama2, chatml or raw")
		}
	}
	if c.GenAI.Concurrency < 1 {
		bad("genai.concurrency", c.GenAI.Concurrency, "must be at least 1")
	}
	if c.GenAI.MaxInstances < 1 {
		bad("genai.max_instances", c.GenAI.MaxInstances, "must be at least 1")
	}
	if q := c.GenAI.Quotas; q.RequestsPerMinute < 0 || q.TokensPerMinute < 0 {
		bad("genai.quotas", fmt.Sprintf("%d requests, %d tokens", q.RequestsPerMinute, q.TokensPerMinute), "must not be negative (0 is unlimited)")
	}
	for id, q := range c.GenAI.Quotas.Models {
		if q.RequestsPerMinute < 0 || q.TokensPerMinute < 0 {
			bad("genai.quotas.models."+id, fmt.Sprintf("%d requests, %d tokens", q.RequestsPerMinute, q.TokensPerMinute), "must not be negative (0 is unlimited)")
		}
	}
	if c.GenAI.ProvisionedQueue < 0 {
		bad("genai.provisioned_queue", c.GenAI.ProvisionedQueue, "must not be negative")
	}
	switch c.Log {
	case "auto", "text", "json":
	default:
		bad("log", c.Log, "want auto, text or json")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", c.LogLevel, "want debug, info, warn or error")
	}
	if c.Node.VCPUs < 1 {
		bad("node.vcpus", c.Node.VCPUs, "must be at least 1")
	}
	if c.Node.MemoryMiB < 256 {
		bad("node.memory_mib", c.Node.MemoryMiB, "must be at least 256")
	}
	if c.Hosting.InstanceConcurrency < 1 {
		bad("hosting.instance_concurrency", c.Hosting.InstanceConcurrency, "must be at least 1")
	}
	if c.Hosting.QueueLimit < 0 {
		bad("hosting.queue_limit", c.Hosting.QueueLimit, "must not be negative")
	}
	if c.Hosting.InvocationTimeout <= 0 {
		bad("hosting.invocation_timeout", c.Hosting.InvocationTimeout.D(), "must be positive")
	}
	if c.Hosting.MaxPayloadBytes < 1 {
		bad("hosting.max_payload_bytes", c.Hosting.MaxPayloadBytes, "must be positive")
	}
	if c.Hosting.ServerlessIdleTimeout <= 0 {
		bad("hosting.serverless_idle_timeout", c.Hosting.ServerlessIdleTimeout.D(), "must be positive")
	}
	if c.Hosting.ServerlessStartTimeout <= 0 {
		bad("hosting.serverless_start_timeout", c.Hosting.ServerlessStartTimeout.D(), "must be positive")
	}
	if c.Hosting.ServerlessMaxPayloadBytes < 1 || c.Hosting.ServerlessMaxPayloadBytes > c.Hosting.MaxPayloadBytes {
		bad("hosting.serverless_max_payload_bytes", c.Hosting.ServerlessMaxPayloadBytes, "must be positive and at most hosting.max_payload_bytes")
	}
	if c.Hosting.HealthCheckInterval <= 0 {
		bad("hosting.health_check_interval", c.Hosting.HealthCheckInterval.D(), "must be positive")
	}
	if c.Hosting.HealthCheckTimeout <= 0 || c.Hosting.HealthCheckTimeout > c.Hosting.HealthCheckInterval {
		bad("hosting.health_check_timeout", c.Hosting.HealthCheckTimeout.D(), "must be positive and at most hosting.health_check_interval")
	}
	if c.Hosting.UnhealthyThreshold < 1 {
		bad("hosting.unhealthy_threshold", c.Hosting.UnhealthyThreshold, "must be at least 1")
	}
	if c.Autoscale.Period <= 0 {
		bad("autoscale.period", c.Autoscale.Period.D(), "must be positive")
	}
	if c.Autoscale.Tick <= 0 {
		bad("autoscale.tick", c.Autoscale.Tick.D(), "must be positive")
	}
	if c.Autoscale.ScaleOutDatapoints < 1 {
		bad("autoscale.scale_out_datapoints", c.Autoscale.ScaleOutDatapoints, "must be at least 1")
	}
	if c.Autoscale.ScaleInDatapoints < 1 {
		bad("autoscale.scale_in_datapoints", c.Autoscale.ScaleInDatapoints, "must be at least 1")
	}
	switch c.Storage.S3 {
	case "embedded":
	case "external":
		if e := c.Storage.External.Endpoint; e != "" {
			if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("storage.external.endpoint", e, "want an http:// or https:// URL")
			}
		}
	default:
		bad("storage.s3", c.Storage.S3, "want embedded or external")
	}
	if c.Queue.URL != "" {
		if u, err := url.Parse(c.Queue.URL); err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			bad("queue.url", c.Queue.URL, "want a nats:// or tls:// URL")
		}
	}
	if c.Queue.AckWait < Duration(time.Second) {
		bad("queue.ack_wait", c.Queue.AckWait.D(), "must be at least 1s")
	}
	if c.Queue.MaxDeliver < 1 {
		bad("queue.max_deliver", c.Queue.MaxDeliver, "must be at least 1")
	}
	if c.Async.IdleTimeout <= 0 {
		bad("async.idle_timeout", c.Async.IdleTimeout.D(), "must be positive")
	}
	if c.Async.RetryDelay < 0 {
		bad("async.retry_delay", c.Async.RetryDelay.D(), "must not be negative")
	}
	if c.Async.IndexRetention <= 0 {
		bad("async.index_retention", c.Async.IndexRetention.D(), "must be positive")
	}
	if c.Async.CapacityPoll <= 0 {
		bad("async.capacity_poll", c.Async.CapacityPoll.D(), "must be positive")
	}
	if c.Async.MinRequestTTL < Duration(time.Second) {
		bad("async.min_request_ttl", c.Async.MinRequestTTL.D(), "must be at least 1s")
	}
	if c.Async.NotifyAttempts < 1 {
		bad("async.notify_attempts", c.Async.NotifyAttempts, "must be at least 1")
	}
	for arn, u := range c.Async.Topics {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad("async.topics."+arn, u, "want an http:// or https:// URL")
		}
	}
	if len(c.AccountID) != 12 {
		bad("account_id", c.AccountID, "must be 12 digits")
	}
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
