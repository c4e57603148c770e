package server

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/inferbox/inferbox/examples"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/config"
)

// The endpoints `serve --examples` deploys, and the foundation model it
// registers (the demo LLM again, behind the Bedrock and OpenAI APIs).
const (
	ExampleEndpoint        = "example-xgboost"
	ExampleLLMEndpoint     = "example-llm"
	ExampleFoundationModel = "meta.kjv-tiny"
)

// withExampleFoundationModel adds the demo LLM as foundation model
// ExampleFoundationModel, written under the data directory, unless the
// configuration already has a model by that id. It runs before the genai
// service is built (models are registered at start-up).
func withExampleFoundationModel(cfg *config.Config) error {
	for _, fm := range cfg.FoundationModels {
		if fm.ID == ExampleFoundationModel {
			return nil
		}
	}
	b, err := fs.ReadFile(examples.LLM, "llm/model/kjv-tiny.gguf")
	if err != nil {
		return err
	}
	dir := filepath.Join(cfg.Data, "examples", "foundation-models")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "kjv-tiny.gguf")
	if old, err := os.ReadFile(path); err != nil || !bytes.Equal(old, b) {
		// Written beside and renamed: a mapped older copy stays intact.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	cfg.FoundationModels = append(cfg.FoundationModels, config.FoundationModel{ID: ExampleFoundationModel, Path: path})
	return nil
}

// example is a bundled model and the endpoint that serves it.
type example struct {
	name  string // model, endpoint config and endpoint name
	image string // runtime
	src   fs.FS
	file  string // path in src of the model file
	try   string // a command to show in the log
}

// deployExamples writes the bundled models under the data directory and
// deploys each on a one-instance real-time endpoint, unless it exists: the
// XGBoost classifier and the demo LLM (examples/llm).
func (s *Server) deployExamples(ctx context.Context) error {
	url := "--endpoint-url http://" + s.cfg.Listen
	for _, ex := range []example{
		{ExampleEndpoint, "xgboost", examples.XGBoost, "xgboost/model/xgboost-model",
			"aws sagemaker-runtime invoke-endpoint " + url + " --endpoint-name " + ExampleEndpoint + " --content-type text/csv --body fileb://examples/xgboost/sample.csv /dev/stdout"},
		{ExampleLLMEndpoint, "llama", examples.LLM, "llm/model/kjv-tiny.gguf",
			"aws sagemaker-runtime invoke-endpoint " + url + " --endpoint-name " + ExampleLLMEndpoint + ` --content-type application/json --body '{"inputs": "In the beginning"}' /dev/stdout`},
	} {
		if err := s.deployExample(ctx, ex); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) deployExample(ctx context.Context, ex example) error {
	if _, err := s.hosting.DescribeEndpoint(ctx, ex.name); err == nil {
		return nil
	}
	dir := filepath.Join(s.cfg.Data, "examples", filepath.Base(filepath.Dir(filepath.Dir(ex.file))))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := fs.ReadFile(ex.src, ex.file)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(ex.file)), b, 0o644); err != nil {
		return err
	}
	if _, err := s.hosting.DescribeModel(ctx, ex.name); err != nil {
		if _, err := s.hosting.CreateModel(ctx, &catalog.Model{
			ModelName:        ex.name,
			PrimaryContainer: &catalog.ContainerDefinition{Image: ex.image, ModelDataUrl: "file://" + dir},
		}); err != nil {
			return fmt.Errorf("example model %s: %w", ex.name, err)
		}
	}
	if _, err := s.hosting.DescribeEndpointConfig(ctx, ex.name); err != nil {
		one, w := 1, 1.0
		if _, err := s.hosting.CreateEndpointConfig(ctx, &catalog.EndpointConfig{
			EndpointConfigName: ex.name,
			ProductionVariants: []catalog.ProductionVariant{{
				VariantName: "AllTraffic", ModelName: ex.name, InstanceType: "ml.m5.large",
				InitialInstanceCount: &one, InitialVariantWeight: &w,
			}},
		}); err != nil {
			return fmt.Errorf("example endpoint config %s: %w", ex.name, err)
		}
	}
	if _, err := s.hosting.CreateEndpoint(ctx, ex.name, ex.name, nil); err != nil {
		return fmt.Errorf("example endpoint %s: %w", ex.name, err)
	}
	s.log.Info("example endpoint deployed", "endpoint", ex.name, "try", ex.try)
	return nil
}
