package cli

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inferbox/inferbox/internal/advisor"
	"github.com/inferbox/inferbox/internal/api/native"
)

// runRecommend is `inferbox cost --recommend`: it fetches
// GET /api/v1/cost/recommendations for the period and prints it.
func runRecommend(cmd *cobra.Command, g *globals, fl costFlags) error {
	q := url.Values{}
	for k, v := range map[string]string{"from": fl.from, "to": fl.to} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := native.RecommendationsPath
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var rs advisor.Recommendations
	ok, err := g.fetch(cmd, "GET", path, nil, &rs)
	if err != nil || !ok {
		return err
	}
	writeRecommendations(cmd.OutOrStdout(), &rs)
	return nil
}

// writeRecommendations prints the endpoints reviewed, each with what it
// cost and what the other modes would have, then the recommendations.
func writeRecommendations(w io.Writer, rs *advisor.Recommendations) {
	fmt.Fprintf(w, "Recommendations from %s to %s (prices: %s, as of %s)\n",
		rs.From.UTC().Format(time.RFC3339), rs.To.UTC().Format(time.RFC3339), rs.Region, rs.PricesAsOf)
	if len(rs.Endpoints) > 0 {
		t := newTable(w, "ENDPOINT", "MODE", "INVOCATIONS", "IDLE", "COST", "REPLAYED IN OTHER MODES")
		for _, e := range rs.Endpoints {
			var alts []string
			for _, a := range e.Alternatives {
				switch {
				case !a.Fits:
					alts = append(alts, a.Mode+": ruled out ("+a.RuledBy+")")
				case a.Unpriced != "":
					alts = append(alts, a.Mode+": UNPRICED")
				default:
					alts = append(alts, fmt.Sprintf("%s: %s", a.Mode, a.Nanodollars))
				}
			}
			c := e.Nanodollars.String()
			if e.Unpriced != "" {
				c += " + UNPRICED " + e.Unpriced
			}
			t.row(e.Resource, e.Mode, e.Invocations, fmt.Sprintf("%.0f%%", e.IdlePercent), c, strings.Join(alts, "; "))
		}
		t.tw.Flush()
	}
	if len(rs.Recommendations) == 0 {
		fmt.Fprintln(w, "no recommendations: no endpoint with traffic in the period would have been served for less in another mode that fits it")
		return
	}
	fmt.Fprintln(w)
	for _, r := range rs.Recommendations {
		fmt.Fprintf(w, "- %s\n", r.Text)
	}
}
