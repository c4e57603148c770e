package native_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/api/native"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/config"
	"github.com/inferbox/inferbox/internal/server"
)

func startServer(t *testing.T) string {
	t.Helper()
	cfg := config.Default()
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = config.Duration(10 * time.Second)
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

// TestErrors checks the error table and body shape on the wire.
func TestErrors(t *testing.T) {
	url := startServer(t)
	c := native.NewClient(url, "", nil)
	ctx := context.Background()
	tests := []struct {
		name       string
		method     string
		path, body string
		status     int
		code, msg  string
	}{
		{"no route", "GET", "nothing/here", "", 404, "NotFound", "No route for GET /api/v1/nothing/here."},
		{"wrong method", "PATCH", "models", "", 404, "NotFound", "No route for PATCH /api/v1/models."},
		{"unknown member", "POST", "models", `{"ModelName":"m","Imagee":"x"}`, 400, "ValidationError", `The request body is not valid JSON for this operation: json: unknown field "Imagee"`},
		{"missing model", "GET", "models/nope", "", 400, "ValidationError", `Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/nope".`},
		{"no autoscaling", "GET", "endpoints/e/variants/v/autoscaling", "", 404, "NotFound", "No scalable target registered for service namespace: sagemaker, resource ID: endpoint/e/variant/v, scalable dimension: sagemaker:variant:DesiredInstanceCount"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, tc.method, url+native.Prefix+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b native.ErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || b.Error.Code != tc.code || b.Error.Message != tc.msg {
				t.Errorf("got %d %s %q, want %d %s %q", resp.StatusCode, b.Error.Code, b.Error.Message, tc.status, tc.code, tc.msg)
			}
		})
	}

	_, err := c.DescribeModel(ctx, "nope")
	var e *native.Error
	if !errors.As(err, &e) || e.Status != 400 || e.Code != "ValidationError" || !strings.HasPrefix(e.Message, "Could not find model") {
		t.Errorf("client error: %#v", err)
	}
	m, err := c.CreateModel(ctx, &catalog.Model{ModelName: "m", PrimaryContainer: &catalog.ContainerDefinition{Image: "xgboost"}})
	if err != nil || m.ModelArn != "arn:aws:sagemaker:us-east-1:123456789012:model/m" || m.CreationTime.IsZero() {
		t.Fatalf("create model: %+v, %v", m, err)
	}
	ms, err := c.ListModels(ctx)
	if err != nil || len(ms) != 1 || ms[0].ModelName != "m" {
		t.Errorf("list models: %+v, %v", ms, err)
	}
}
