package cli

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inferbox/inferbox/internal/api/native"
	"github.com/inferbox/inferbox/internal/catalog"
)

func modelCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "model", Short: "Create, list, describe and delete models"}
	cmd.AddCommand(modelCreateCmd(g), modelListCmd(g), modelDescribeCmd(g), modelDeleteCmd(g))
	return cmd
}

// modelFlags are the flags that define a model (model create, deploy).
type modelFlags struct {
	image     string
	modelData string
	env       []string
}

func (m *modelFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&m.image, "image", "", "runtime image: xgboost, llama, a SageMaker XGBoost image URI, process:<command> or an executable path")
	f.StringVar(&m.modelData, "model-data", "", "model artifact: a directory, file, file:// or s3:// URL, or a model.tar.gz")
	f.StringArrayVar(&m.env, "env", nil, "container environment variable K=V (repeatable)")
}

func (m *modelFlags) model(cmd *cobra.Command, name string) (*catalog.Model, error) {
	if err := required(cmd, "image"); err != nil {
		return nil, err
	}
	c := &catalog.ContainerDefinition{Image: m.image, ModelDataUrl: m.modelData}
	for _, kv := range m.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, &UsageError{Err: fmt.Errorf("--env %q: want K=V", kv), Usage: cmd.UseLine()}
		}
		if c.Environment == nil {
			c.Environment = map[string]string{}
		}
		c.Environment[k] = v
	}
	return &catalog.Model{ModelName: name, PrimaryContainer: c}, nil
}

func modelCreateCmd(g *globals) *cobra.Command {
	var mf modelFlags
	cmd := &cobra.Command{
		Use:   "create NAME --image IMAGE [--model-data URL] [--env K=V ...]",
		Short: "Register a model",
		Args:  exactArgs(1, "a model name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := mf.model(cmd, args[0])
			if err != nil {
				return err
			}
			var out catalog.Model
			if ok, err := g.fetch(cmd, http.MethodPost, native.ModelPath(""), m, &out); !ok {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created model %s (%s)\n", out.ModelName, out.ModelArn)
			return nil
		},
	}
	mf.register(cmd)
	return cmd
}

func modelListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List models",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out native.ModelList
			if ok, err := g.fetch(cmd, http.MethodGet, native.ModelPath(""), nil, &out); !ok {
				return err
			}
			now := time.Now()
			t := newTable(cmd.OutOrStdout(), "NAME", "IMAGE", "MODEL DATA", "CREATED")
			for _, m := range out.Models {
				img, data := "-", "-"
				if c := container(m); c != nil {
					img, data = orDash(c.Image), orDash(c.ModelDataUrl)
				}
				t.row(m.ModelName, img, data, ago(m.CreationTime, now))
			}
			return t.flush()
		},
	}
}

func container(m *catalog.Model) *catalog.ContainerDefinition {
	if m.PrimaryContainer != nil {
		return m.PrimaryContainer
	}
	if len(m.Containers) > 0 {
		return &m.Containers[0]
	}
	return nil
}

func modelDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a model",
		Args:  exactArgs(1, "a model name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var m catalog.Model
			if ok, err := g.fetch(cmd, http.MethodGet, native.ModelPath(args[0]), nil, &m); !ok {
				return err
			}
			kv := []string{"Name", m.ModelName, "ARN", m.ModelArn}
			if c := container(&m); c != nil {
				kv = append(kv, "Image", c.Image, "Model data", c.ModelDataUrl)
				keys := make([]string, 0, len(c.Environment))
				for k := range c.Environment {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				for i, k := range keys {
					label := ""
					if i == 0 {
						label = "Environment"
					}
					kv = append(kv, label, k+"="+c.Environment[k])
				}
			}
			kv = append(kv, "Created", stamp(m.CreationTime, time.Now()))
			return fields(cmd.OutOrStdout(), kv...)
		},
	}
}

func modelDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a model (running endpoints keep their instances)",
		Args:  exactArgs(1, "a model name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ok, err := g.fetch(cmd, http.MethodDelete, native.ModelPath(args[0]), nil, nil); !ok {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted model %s\n", args[0])
			return nil
		},
	}
}
