package native

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/cost"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/pricebook"
)

// CostPath is the cost report route, relative to Prefix.
const CostPath = "cost"

// RegisterCost adds GET /api/v1/cost?from=&to=&by=&unpriced= and
// GET /api/v1/cost/recommendations?from=&to= over the usage ledger. The price book is the shipped default with the override
// file at pricebookPath ("" for none) merged in, read on every request so
// an edited override applies without a restart. The composition root
// calls it once, before serving.
func (a *API) RegisterCost(l cost.Ledger, pricebookPath string) {
	cr := &costRoutes{l: l, path: pricebookPath, now: time.Now}
	a.handle("GET "+Prefix+CostPath, cr.report)
	a.handle("GET "+Prefix+RecommendationsPath, cr.recommendations)
}

type costRoutes struct {
	l    cost.Ledger
	path string
	now  func() time.Time
}

func (cr *costRoutes) report(r *http.Request) (int, any, error) {
	q := r.URL.Query()
	o := cost.Options{By: q.Get("by")}
	var err error
	if o.To, err = parseTime("to", q.Get("to"), cr.now().UTC().Truncate(time.Second)); err != nil {
		return 0, nil, err
	}
	if o.From, err = parseTime("from", q.Get("from"), o.To.Add(-24*time.Hour)); err != nil {
		return 0, nil, err
	}
	if v := q.Get("unpriced"); v != "" {
		if o.AllowUnpriced, err = strconv.ParseBool(v); err != nil {
			return 0, nil, apierr.New(apierr.Validation, "unpriced %q: must be true or false.", v)
		}
	}
	types, err := instancetype.Default()
	if err != nil {
		return 0, nil, err
	}
	book, err := pricebook.Load(cr.path, types)
	if err != nil {
		return 0, nil, apierr.New(apierr.Internal, "%v", err)
	}
	rep, err := cost.Compute(r.Context(), cr.l, book, o)
	if err != nil {
		if errors.Is(err, pricebook.ErrMissingPrice) || errors.Is(err, cost.ErrInvalid) {
			return 0, nil, apierr.New(apierr.Validation, "%v", err)
		}
		return 0, nil, err
	}
	return http.StatusOK, rep, nil
}

// parseTime reads RFC 3339 or a date (midnight UTC); "" is def.
func parseTime(name, v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, apierr.New(apierr.Validation, "%s %q: must be RFC 3339 (2026-03-02T15:04:05Z) or a date (2026-03-02).", name, v)
}

// Cost fetches the cost report for [from, to) grouped by by; zero times
// take the server's defaults (the last 24 hours).
func (c *Client) Cost(ctx context.Context, from, to time.Time, by string, allowUnpriced bool) (*cost.Report, error) {
	q := url.Values{}
	if !from.IsZero() {
		q.Set("from", from.UTC().Format(time.RFC3339))
	}
	if !to.IsZero() {
		q.Set("to", to.UTC().Format(time.RFC3339))
	}
	if by != "" {
		q.Set("by", by)
	}
	if allowUnpriced {
		q.Set("unpriced", "true")
	}
	p := CostPath
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return callT[cost.Report](ctx, c, http.MethodGet, p, nil)
}
