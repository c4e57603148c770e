package hosting

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
)

var serverlessMemorySizes = map[int]bool{1024: true, 2048: true, 3072: true, 4096: true, 5120: true, 6144: true}

// CreateEndpointConfig validates and stores an endpoint config.
func (s *Service) CreateEndpointConfig(ctx context.Context, c *catalog.EndpointConfig) (*catalog.EndpointConfig, error) {
	if err := checkEndpointName("endpointConfigName", c.EndpointConfigName); err != nil {
		return nil, err
	}
	if err := s.validateVariants(ctx, c.ProductionVariants); err != nil {
		return nil, err
	}
	if err := s.validateAsync(c); err != nil {
		return nil, err
	}
	c.EndpointConfigArn = s.arn("endpoint-config", c.EndpointConfigName)
	c.CreationTime = catalog.Now()
	for i := range c.ProductionVariants {
		v := &c.ProductionVariants[i]
		if v.InitialVariantWeight == nil {
			w := 1.0
			v.InitialVariantWeight = &w
		}
	}
	if err := s.deps.Store.CreateEndpointConfig(ctx, c); err != nil {
		if errors.Is(err, catalog.ErrExists) {
			return nil, apierr.Validationf("Cannot create already existing endpoint configuration %q.", c.EndpointConfigArn)
		}
		return nil, err
	}
	return c, nil
}

func (s *Service) validateVariants(ctx context.Context, vs []catalog.ProductionVariant) error {
	var problems []string
	if len(vs) == 0 {
		problems = append(problems, "Value '[]' at 'productionVariants' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if len(vs) > 10 {
		problems = append(problems, fmt.Sprintf("Value at 'productionVariants' failed to satisfy constraint: Member must have length less than or equal to 10 (got %d)", len(vs)))
	}
	for i, v := range vs {
		field := fmt.Sprintf("productionVariants.%d.member", i+1)
		if err := checkEndpointName(field+".variantName", v.VariantName); err != nil {
			problems = append(problems, strings.SplitN(err.Error(), ": ", 2)[1])
		}
		if v.InitialInstanceCount != nil && *v.InitialInstanceCount < 1 {
			problems = append(problems, fmt.Sprintf("Value '%d' at '%s.initialInstanceCount' failed to satisfy constraint: Member must have value greater than or equal to 1", *v.InitialInstanceCount, field))
		}
		if v.InitialVariantWeight != nil && *v.InitialVariantWeight < 0 {
			problems = append(problems, fmt.Sprintf("Value '%g' at '%s.initialVariantWeight' failed to satisfy constraint: Member must have value greater than or equal to 0", *v.InitialVariantWeight, field))
		}
		if v.InstanceType != "" {
			if _, err := s.deps.Types.Lookup(v.InstanceType); err != nil {
				problems = append(problems, fmt.Sprintf("Value '%s' at '%s.instanceType' failed to satisfy constraint: Member must satisfy enum value set: [%s]", v.InstanceType, field, strings.Join(s.deps.Types.Names(), ", ")))
			}
		}
		if sc := v.ServerlessConfig; sc != nil {
			if !serverlessMemorySizes[sc.MemorySizeInMB] {
				problems = append(problems, fmt.Sprintf("Value '%d' at '%s.serverlessConfig.memorySizeInMB' failed to satisfy constraint: Member must be one of 1024, 2048, 3072, 4096, 5120, 6144", sc.MemorySizeInMB, field))
			}
			if sc.MaxConcurrency < 1 || sc.MaxConcurrency > 200 {
				problems = append(problems, fmt.Sprintf("Value '%d' at '%s.serverlessConfig.maxConcurrency' failed to satisfy constraint: Member must have value between 1 and 200", sc.MaxConcurrency, field))
			}
			if sc.ProvisionedConcurrency < 0 || sc.ProvisionedConcurrency > 200 {
				problems = append(problems, fmt.Sprintf("Value '%d' at '%s.serverlessConfig.provisionedConcurrency' failed to satisfy constraint: Member must have value between 1 and 200", sc.ProvisionedConcurrency, field))
			}
		}
		if r := v.RoutingConfig; r != nil && r.RoutingStrategy != "LEAST_OUTSTANDING_REQUESTS" && r.RoutingStrategy != "RANDOM" {
			problems = append(problems, fmt.Sprintf("Value '%s' at '%s.routingConfig.routingStrategy' failed to satisfy constraint: Member must satisfy enum value set: [LEAST_OUTSTANDING_REQUESTS, RANDOM]", r.RoutingStrategy, field))
		}
	}
	if len(problems) > 0 {
		return validationErrors(problems)
	}
	seen := map[string]bool{}
	for _, v := range vs {
		key := strings.ToLower(v.VariantName)
		if seen[key] {
			return apierr.Validationf("The VariantName %q is used more than once. Each VariantName in ProductionVariants must be unique.", v.VariantName)
		}
		seen[key] = true
		if v.InstanceType == "" && v.ServerlessConfig == nil {
			return apierr.Validationf("Either InstanceType or ServerlessConfig must be specified for the production variant %q.", v.VariantName)
		}
		if v.InstanceType != "" && v.ServerlessConfig != nil {
			return apierr.Validationf("You can specify either InstanceType or ServerlessConfig, but not both, for the production variant %q.", v.VariantName)
		}
		if v.InstanceType != "" && v.InitialInstanceCount == nil {
			return apierr.Validationf("InitialInstanceCount is required for the production variant %q that uses InstanceType %s.", v.VariantName, v.InstanceType)
		}
		if sc := v.ServerlessConfig; sc != nil {
			if len(vs) > 1 {
				return apierr.Validationf("Serverless endpoints support only one production variant; variant %q has a ServerlessConfig and the endpoint configuration has %d variants.", v.VariantName, len(vs))
			}
			if sc.ProvisionedConcurrency > sc.MaxConcurrency {
				return apierr.Validationf("ProvisionedConcurrency (%d) must be less than or equal to MaxConcurrency (%d) for the production variant %q.", sc.ProvisionedConcurrency, sc.MaxConcurrency, v.VariantName)
			}
			if v.InitialInstanceCount != nil {
				return apierr.Validationf("InitialInstanceCount cannot be specified for the serverless production variant %q.", v.VariantName)
			}
		}
		if v.ModelName == "" {
			return apierr.Validationf("ModelName is required for the production variant %q.", v.VariantName)
		}
		if _, err := s.deps.Store.GetModel(ctx, v.ModelName); err != nil {
			if errors.Is(err, catalog.ErrNotFound) {
				return s.errNoModel(v.ModelName)
			}
			return err
		}
	}
	return nil
}

// DescribeEndpointConfig returns an endpoint config.
func (s *Service) DescribeEndpointConfig(ctx context.Context, name string) (*catalog.EndpointConfig, error) {
	c, err := s.deps.Store.GetEndpointConfig(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, s.errNoEndpointConfig(name)
	}
	return c, err
}

// ListEndpointConfigs returns every endpoint config, oldest first.
func (s *Service) ListEndpointConfigs(ctx context.Context) ([]*catalog.EndpointConfig, error) {
	return s.deps.Store.ListEndpointConfigs(ctx)
}

// DeleteEndpointConfig deletes an endpoint config's record.
func (s *Service) DeleteEndpointConfig(ctx context.Context, name string) error {
	err := s.deps.Store.DeleteEndpointConfig(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return s.errNoEndpointConfig(name)
	}
	return err
}
