package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/inferbox/inferbox/internal/config"
	"github.com/inferbox/inferbox/internal/server"
)

func serveCmd() *cobra.Command {
	var (
		configPath string
		listen     string
		data       string
		examples   bool
		logFormat  string
		models     []string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the inferbox server",
		Long: `Run the inferbox server: every protocol (SageMaker, Application Auto Scaling,
Bedrock, the OpenAI-compatible /v1 API, the native API, /metrics, /healthz) on one
listener, state in the data directory.
Settings not given as flags come from --config (YAML), then the defaults.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configPath)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("listen") {
				cfg.Listen = listen
			}
			if cmd.Flags().Changed("data") {
				cfg.Data = data
			}
			if cmd.Flags().Changed("examples") {
				cfg.Examples = examples
			}
			if cmd.Flags().Changed("log") {
				cfg.Log = logFormat
			}
			for _, v := range models {
				fm, err := config.ParseFoundationModel(v)
				if err != nil {
					return err
				}
				cfg.FoundationModels = append(cfg.FoundationModels, fm)
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			log := newLogger(os.Stderr, cfg.Log, cfg.LogLevel)
			return serve(cmd.Context(), cfg, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "YAML configuration file")
	f.StringVar(&listen, "listen", config.Default().Listen, "address to listen on (host:port)")
	f.StringVar(&data, "data", config.Default().Data, "data directory (catalog, artifact cache, usage ledger)")
	f.BoolVar(&examples, "examples", false, "deploy the bundled example models on start")
	f.StringArrayVar(&models, "foundation-model", nil, "serve a GGUF foundation model through the Bedrock and OpenAI APIs: ID=PATH (repeatable)")
	f.StringVar(&logFormat, "log", "auto", "log format: auto (text on a terminal, JSON otherwise), text or json")
	return cmd
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = srv.Shutdown(context.WithoutCancel(ctx))
		return fmt.Errorf("listen: %w", err)
	}
	return srv.Serve(ctx, ln)
}

func newLogger(w *os.File, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "auto" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	var out io.Writer = w
	if format == "text" {
		return slog.New(slog.NewTextHandler(out, opts))
	}
	return slog.New(slog.NewJSONHandler(out, opts))
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
