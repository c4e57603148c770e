package hosting

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/inferbox/inferbox/internal/apierr"
)

// SageMaker's name patterns (botocore service model).
var (
	endpointNamePattern = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`)
	modelNamePattern    = regexp.MustCompile(`^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$`)
)

const (
	endpointNameRegex = `^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`
	modelNameRegex    = `^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?`
)

// checkName validates a name the way SageMaker's request validation words it.
func checkName(field, value string, pattern *regexp.Regexp, regex string) error {
	var problems []string
	if len(value) > 63 {
		problems = append(problems, fmt.Sprintf("Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to 63", value, field))
	}
	if value == "" {
		problems = append(problems, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", field))
	} else if !pattern.MatchString(value) {
		problems = append(problems, fmt.Sprintf("Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", value, field, regex))
	}
	if len(problems) == 0 {
		return nil
	}
	return validationErrors(problems)
}

func validationErrors(problems []string) error {
	noun := "error"
	if len(problems) > 1 {
		noun = "errors"
	}
	return apierr.Validationf("%d validation %s detected: %s", len(problems), noun, strings.Join(problems, "; "))
}

func checkEndpointName(field, v string) error {
	return checkName(field, v, endpointNamePattern, endpointNameRegex)
}

func checkModelName(field, v string) error {
	return checkName(field, v, modelNamePattern, modelNameRegex)
}

// arn builds a SageMaker ARN; like SageMaker, the resource name is lower-cased.
func (s *Service) arn(kind, name string) string {
	return fmt.Sprintf("arn:aws:sagemaker:%s:%s:%s/%s", s.cfg.Region, s.cfg.AccountID, kind, strings.ToLower(name))
}

func (s *Service) errNoEndpoint(name string) error {
	return apierr.Validationf("Could not find endpoint %q.", s.arn("endpoint", name))
}

func (s *Service) errNoEndpointConfig(name string) error {
	return apierr.Validationf("Could not find endpoint configuration %q.", s.arn("endpoint-config", name))
}

func (s *Service) errNoModel(name string) error {
	return apierr.Validationf("Could not find model %q.", s.arn("model", name))
}

// errInvokeNotFound is the runtime's wording for an unknown endpoint.
func (s *Service) errInvokeNotFound(name string) error {
	return apierr.Validationf("Endpoint %s of account %s not found.", name, s.cfg.AccountID)
}
