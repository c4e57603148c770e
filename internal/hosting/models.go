package hosting

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/catalog"
)

// Runtime kinds built into inferbox.
const (
	KindXGBoost = "xgboost"
	KindLlama   = "llama"
	KindProcess = "process"
)

// AWS's public SageMaker XGBoost images, e.g.
// 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1,
// and the first-party algorithm image .../xgboost:1 or :latest.
var xgboostImage = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/(sagemaker-)?xgboost(:[^/]+|@sha256:[0-9a-f]+)?$`)

// resolvedImage says which runtime serves a container image.
type resolvedImage struct {
	Kind    string
	Command []string // for KindProcess
}

// resolveImage maps a container Image to a runtime: a built-in runtime name
// ("xgboost", "inferbox/xgboost:<tag>", "llama"), one of AWS's SageMaker
// XGBoost image URIs (so unchanged SageMaker scripts work), or a
// bring-your-own command: "process:<command line>" or the path of an
// executable file.
func resolveImage(image string) (resolvedImage, error) {
	img := strings.TrimSpace(image)
	if cmd, ok := strings.CutPrefix(img, "process:"); ok {
		fields := strings.Fields(cmd)
		if len(fields) == 0 {
			return resolvedImage{}, apierr.Validationf("Image %q names no command after \"process:\".", image)
		}
		return resolvedImage{Kind: KindProcess, Command: fields}, nil
	}
	base := img
	if i := strings.LastIndex(base, ":"); i > 0 && !strings.Contains(base[i:], "/") {
		base = base[:i]
	}
	switch base {
	case "xgboost", "inferbox/xgboost":
		return resolvedImage{Kind: KindXGBoost}, nil
	case "llama", "inferbox/llama":
		return resolvedImage{Kind: KindLlama}, nil
	}
	if xgboostImage.MatchString(img) {
		return resolvedImage{Kind: KindXGBoost}, nil
	}
	if strings.HasPrefix(img, "/") {
		if st, err := os.Stat(img); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return resolvedImage{Kind: KindProcess, Command: []string{img}}, nil
		}
		return resolvedImage{}, apierr.Validationf("Image %q is not an executable file on this host.", image)
	}
	return resolvedImage{}, apierr.Validationf("Requested image %s is not supported by inferbox: use a built-in runtime (xgboost, llama), a SageMaker XGBoost image URI, \"process:<command>\" or the path of an executable model server.", image)
}

// CreateModel registers a model.
func (s *Service) CreateModel(ctx context.Context, m *catalog.Model) (*catalog.Model, error) {
	if err := checkModelName("modelName", m.ModelName); err != nil {
		return nil, err
	}
	c := primaryContainer(m)
	if c == nil {
		return nil, apierr.Validationf("Either PrimaryContainer or Containers must be specified for model %q.", m.ModelName)
	}
	if len(m.Containers) > 1 {
		return nil, apierr.Validationf("Inference pipelines (more than one container) are not supported yet.")
	}
	if c.Image == "" {
		return nil, apierr.Validationf("1 validation error detected: Value null at 'primaryContainer.image' failed to satisfy constraint: Member must not be null")
	}
	if _, err := resolveImage(c.Image); err != nil {
		return nil, err
	}
	if c.ModelDataUrl != "" {
		if err := s.deps.Artifacts.Check(c.ModelDataUrl); err != nil {
			return nil, apierr.Validationf("Could not access model data at %s: %v", c.ModelDataUrl, err)
		}
	}
	m.ModelArn = s.arn("model", m.ModelName)
	m.CreationTime = catalog.Now()
	if err := s.deps.Store.CreateModel(ctx, m); err != nil {
		if errors.Is(err, catalog.ErrExists) {
			return nil, apierr.Validationf("Cannot create already existing model %q.", m.ModelArn)
		}
		return nil, err
	}
	return m, nil
}

func primaryContainer(m *catalog.Model) *catalog.ContainerDefinition {
	if m.PrimaryContainer != nil {
		return m.PrimaryContainer
	}
	if len(m.Containers) > 0 {
		return &m.Containers[0]
	}
	return nil
}

// DescribeModel returns a model.
func (s *Service) DescribeModel(ctx context.Context, name string) (*catalog.Model, error) {
	m, err := s.deps.Store.GetModel(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, s.errNoModel(name)
	}
	return m, err
}

// ListModels returns every model, oldest first.
func (s *Service) ListModels(ctx context.Context) ([]*catalog.Model, error) {
	return s.deps.Store.ListModels(ctx)
}

// DeleteModel deletes a model's record; running endpoints keep their instances.
func (s *Service) DeleteModel(ctx context.Context, name string) error {
	err := s.deps.Store.DeleteModel(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		return s.errNoModel(name)
	}
	return err
}
