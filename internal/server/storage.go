package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	s3api "github.com/inferbox/inferbox/internal/api/s3"
	"github.com/inferbox/inferbox/internal/config"
	"github.com/inferbox/inferbox/internal/objstore"
)

// storage is object storage as the rest of the server sees it: the
// Resolver every mode reads and writes URIs through, and the embedded
// store the S3 API serves (nil when s3:// points at an external service).
type storage struct {
	objects  *objstore.Resolver
	embedded *objstore.Embedded
}

func openStorage(ctx context.Context, cfg config.Config, log *slog.Logger) (storage, error) {
	log = log.With("component", "objstore")
	if cfg.Storage.S3 == "external" {
		ext := cfg.Storage.External
		region := ext.Region
		if region == "" {
			region = cfg.Region
		}
		x, err := objstore.NewExternal(ctx, objstore.ExternalConfig{Region: region, Endpoint: ext.Endpoint, PathStyle: ext.PathStyle})
		if err != nil {
			return storage{}, err
		}
		log.Info("s3:// is an external service", "endpoint", ext.Endpoint, "region", region)
		return storage{objects: objstore.NewResolver(x)}, nil
	}
	e, err := objstore.OpenEmbedded(filepath.Join(cfg.Data, "objects"), log)
	if err != nil {
		return storage{}, fmt.Errorf("storage: %w", err)
	}
	return storage{objects: objstore.NewResolver(e), embedded: e}, nil
}

// s3Handler is the S3 API over the embedded store, or nil.
func (s *Server) s3Handler(verifier *awsproto.Verifier) *s3api.Handler {
	if s.storage.embedded == nil {
		return nil
	}
	return s3api.New(s.storage.embedded, verifier, s.log, s3api.Options{Region: s.cfg.Region, Domains: s.cfg.Storage.VirtualHostDomains})
}

// withS3 sends S3 requests (signed for service s3, presigned for it, or
// addressed to <bucket>.<domain>) to the S3 API before any other route.
func withS3(s3 *s3api.Handler, next http.Handler) http.Handler {
	if s3 == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s3.Claims(r) {
			s3.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// s3Fallback serves unsigned requests that no other route matched as S3
// requests (path style); anything else is a 404 as before.
func s3Fallback(s3 *s3api.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s3 != nil && awsproto.Identify(r).Service == "" {
			s3.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
}
