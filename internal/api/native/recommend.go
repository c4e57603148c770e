package native

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/inferbox/inferbox/internal/advisor"
	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/cost"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/pricebook"
)

// RecommendationsPath is the recommendations route, relative to Prefix.
const RecommendationsPath = "cost/recommendations"

// recommendations serves GET /api/v1/cost/recommendations?from=&to=:
// advisor.Recommend over the usage ledger for [from, to) (default: the
// last 24 hours), priced like the cost report. RegisterCost adds it.
func (cr *costRoutes) recommendations(r *http.Request) (int, any, error) {
	q := r.URL.Query()
	var o advisor.RecommendOptions
	var err error
	if o.To, err = parseTime("to", q.Get("to"), cr.now().UTC().Truncate(time.Second)); err != nil {
		return 0, nil, err
	}
	if o.From, err = parseTime("from", q.Get("from"), o.To.Add(-24*time.Hour)); err != nil {
		return 0, nil, err
	}
	types, err := instancetype.Default()
	if err != nil {
		return 0, nil, err
	}
	book, err := pricebook.Load(cr.path, types)
	if err != nil {
		return 0, nil, apierr.New(apierr.Internal, "%v", err)
	}
	rs, err := advisor.Recommend(r.Context(), cr.l, book, o)
	if err != nil {
		if errors.Is(err, pricebook.ErrMissingPrice) || errors.Is(err, cost.ErrInvalid) {
			return 0, nil, apierr.New(apierr.Validation, "%v", err)
		}
		return 0, nil, err
	}
	return http.StatusOK, rs, nil
}

// Recommendations fetches the recommendations for [from, to); zero times
// take the server's defaults (the last 24 hours).
func (c *Client) Recommendations(ctx context.Context, from, to time.Time) (*advisor.Recommendations, error) {
	q := url.Values{}
	if !from.IsZero() {
		q.Set("from", from.UTC().Format(time.RFC3339))
	}
	if !to.IsZero() {
		q.Set("to", to.UTC().Format(time.RFC3339))
	}
	p := RecommendationsPath
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return callT[advisor.Recommendations](ctx, c, http.MethodGet, p, nil)
}
