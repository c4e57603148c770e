package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/inferbox/inferbox/examples"
	"github.com/inferbox/inferbox/internal/catalog"
)

// ExampleEndpoint is the endpoint `serve --examples` deploys.
const ExampleEndpoint = "example-xgboost"

// deployExamples writes the bundled XGBoost model under the data directory
// and deploys it on a one-instance real-time endpoint, unless it exists.
func (s *Server) deployExamples(ctx context.Context) error {
	if _, err := s.hosting.DescribeEndpoint(ctx, ExampleEndpoint); err == nil {
		return nil
	}
	dir := filepath.Join(s.cfg.Data, "examples", "xgboost")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := examples.XGBoost.ReadFile("xgboost/model/xgboost-model")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "xgboost-model")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	if _, err := s.hosting.DescribeModel(ctx, ExampleEndpoint); err != nil {
		if _, err := s.hosting.CreateModel(ctx, &catalog.Model{
			ModelName:        ExampleEndpoint,
			PrimaryContainer: &catalog.ContainerDefinition{Image: "xgboost", ModelDataUrl: "file://" + dir},
		}); err != nil {
			return fmt.Errorf("example model: %w", err)
		}
	}
	if _, err := s.hosting.DescribeEndpointConfig(ctx, ExampleEndpoint); err != nil {
		one, w := 1, 1.0
		if _, err := s.hosting.CreateEndpointConfig(ctx, &catalog.EndpointConfig{
			EndpointConfigName: ExampleEndpoint,
			ProductionVariants: []catalog.ProductionVariant{{
				VariantName: "AllTraffic", ModelName: ExampleEndpoint, InstanceType: "ml.m5.large",
				InitialInstanceCount: &one, InitialVariantWeight: &w,
			}},
		}); err != nil {
			return fmt.Errorf("example endpoint config: %w", err)
		}
	}
	if _, err := s.hosting.CreateEndpoint(ctx, ExampleEndpoint, ExampleEndpoint, nil); err != nil {
		return fmt.Errorf("example endpoint: %w", err)
	}
	s.log.Info("example endpoint deployed", "endpoint", ExampleEndpoint, "try", "aws sagemaker-runtime invoke-endpoint --endpoint-url http://"+s.cfg.Listen+" --endpoint-name "+ExampleEndpoint+" --content-type text/csv --body fileb://examples/xgboost/sample.csv /dev/stdout")
	return nil
}
