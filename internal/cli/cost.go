package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inferbox/inferbox/internal/api/native"
	"github.com/inferbox/inferbox/internal/cost"
)

type costFlags struct {
	from, to, by, html string
	chart, unpriced    bool
	recommend          bool
}

func costCmd(g *globals) *cobra.Command {
	var fl costFlags
	cmd := &cobra.Command{
		Use:   "cost [--from TIME] [--to TIME] [--by mode|resource|caller|day] [--chart] [--html FILE] [--recommend]",
		Short: "Show what the recorded usage cost, priced from the price book",
		Long: `Price the usage ledger over [--from, --to) and show the cost by mode,
resource (endpoint or job), caller (access key) or day. Times are RFC 3339 or
dates (midnight UTC); the default period is the last 24 hours. Real-time
instance time nobody used is its own "idle (paid for, unused)" line. The
totals are checked against the ledger ("reconciled").

A usage the price book has no price for fails the report, naming it;
--unpriced shows it as an UNPRICED line instead. --chart adds a bar chart;
--html FILE writes the report with an SVG bar chart to FILE.

--recommend prints recommendations instead (GET /api/v1/cost/recommendations):
each real-time, serverless and async endpoint's recorded traffic replayed
through the other modes that meet its latency need, priced, and compared with
what it cost; for LLM traffic the input-token share of cost and the saving from
shorter prompts, batch-eligible traffic, and provisioned throughput against
on-demand. See docs/cost.md, "Recommendations".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fl.recommend {
				return runRecommend(cmd, g, fl)
			}
			q := url.Values{}
			for k, v := range map[string]string{"from": fl.from, "to": fl.to, "by": fl.by} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if fl.unpriced {
				q.Set("unpriced", "true")
			}
			path := native.CostPath
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			var rep cost.Report
			ok, err := g.fetch(cmd, "GET", path, nil, &rep)
			if err != nil || !ok {
				return err
			}
			w := cmd.OutOrStdout()
			writeCostTable(w, &rep)
			if fl.chart {
				fmt.Fprintln(w)
				writeCostChart(w, &rep, 40)
			}
			if fl.html != "" {
				f, err := os.Create(fl.html)
				if err != nil {
					return err
				}
				err = writeCostHTML(f, &rep)
				return errors.Join(err, f.Close())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.from, "from", "", "start of the period, inclusive (RFC 3339 or YYYY-MM-DD; default: 24 hours before --to)")
	f.StringVar(&fl.to, "to", "", "end of the period, exclusive (default: now)")
	f.StringVar(&fl.by, "by", "mode", "group by mode, resource, caller or day")
	f.BoolVar(&fl.chart, "chart", false, "add a bar chart")
	f.StringVar(&fl.html, "html", "", "also write the report as HTML with an SVG chart to this file")
	f.BoolVar(&fl.unpriced, "unpriced", false, "show usage without a price as UNPRICED lines instead of failing")
	f.BoolVar(&fl.recommend, "recommend", false, "show what other modes would have cost each endpoint, and recommendations")
	return cmd
}

func share(n, total cost.Nanos) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(total))
}

// writeCostTable prints the report as a table with a total and the check.
func writeCostTable(w io.Writer, r *cost.Report) {
	fmt.Fprintf(w, "Cost from %s to %s by %s (prices: %s, as of %s)\n",
		r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339), r.By, r.Region, r.PricesAsOf)
	t := newTable(w, strings.ToUpper(r.By), "COST", "SHARE", "INSTANCE-HOURS", "INVOCATIONS")
	var hours float64
	for _, l := range r.Lines {
		t.row(l.Label(), l.Nanodollars, share(l.Nanodollars, r.Nanodollars), fmt.Sprintf("%.3f", l.InstanceSeconds/3600), l.Invocations)
		hours += l.InstanceSeconds / 3600
	}
	t.row("TOTAL", r.Nanodollars, share(r.Nanodollars, r.Nanodollars), fmt.Sprintf("%.3f", hours), r.Check.ReportInvocations)
	t.tw.Flush()
	c := r.Check
	verdict := "reconciled"
	if !c.Reconciled {
		verdict = "NOT RECONCILED"
	}
	fmt.Fprintf(w, "check: lines sum %s = total %s; instance time %.3f h, ledger %.3f h; invocations %d, ledger %d: %s\n",
		c.LinesNanodollars, c.TotalNanodollars, float64(c.ReportInstanceMicros)/3.6e9, float64(c.LedgerInstanceMicros)/3.6e9,
		c.ReportInvocations, c.LedgerInvocations, verdict)
}

// blocks are the eighths of a character cell, for bar ends.
var blocks = []string{"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"}

// bar is a bar of n/max of width cells, in eighths.
func bar(n, most cost.Nanos, width int) string {
	if most <= 0 || n <= 0 {
		return ""
	}
	eighths := int(float64(n) / float64(most) * float64(width*8))
	if eighths == 0 {
		eighths = 1 // a priced line is never drawn as nothing
	}
	return strings.Repeat("█", eighths/8) + blocks[eighths%8]
}

// writeCostChart prints a horizontal bar per line, scaled to the largest.
func writeCostChart(w io.Writer, r *cost.Report, width int) {
	var most cost.Nanos
	for _, l := range r.Lines {
		most = max(most, l.Nanodollars)
	}
	t := newTable(w)
	for _, l := range r.Lines {
		t.row(l.Label(), bar(l.Nanodollars, most, width), l.Nanodollars)
	}
	t.tw.Flush()
}

// writeCostHTML writes a standalone page: an SVG bar chart and the table.
func writeCostHTML(w io.Writer, r *cost.Report) error {
	var most cost.Nanos
	for _, l := range r.Lines {
		most = max(most, l.Nanodollars)
	}
	const rowH, labelW, barW = 24, 320, 480
	var b strings.Builder
	title := fmt.Sprintf("inferbox cost %s to %s by %s", r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339), r.By)
	fmt.Fprintf(&b, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head><body>\n<h1>%s</h1>\n", html.EscapeString(title), html.EscapeString(title))
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"13\">\n", labelW+barW+120, rowH*len(r.Lines)+8)
	for i, l := range r.Lines {
		y := i*rowH + 4
		wpx := 0.0
		if most > 0 {
			wpx = float64(barW) * float64(l.Nanodollars) / float64(most)
		}
		color := "#3b7dd8"
		switch l.Kind {
		case cost.KindIdle:
			color = "#d8893b"
		case cost.KindUnpriced:
			color = "#c0392b"
		}
		fmt.Fprintf(&b, "<text x=\"0\" y=\"%d\">%s</text><rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/><text x=\"%.1f\" y=\"%d\">%s</text>\n",
			y+15, html.EscapeString(l.Label()), labelW, y, wpx, rowH-6, color, float64(labelW)+wpx+6, y+15, l.Nanodollars)
	}
	b.WriteString("</svg>\n<table border=\"1\" cellpadding=\"4\"><tr><th>" + html.EscapeString(r.By) + "</th><th>cost</th><th>instance-hours</th><th>invocations</th></tr>\n")
	for _, l := range r.Lines {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%.3f</td><td>%d</td></tr>\n", html.EscapeString(l.Label()), l.Nanodollars, l.InstanceSeconds/3600, l.Invocations)
	}
	fmt.Fprintf(&b, "<tr><th>TOTAL</th><th>%s</th><th></th><th>%d</th></tr>\n</table>\n", r.Nanodollars, r.Check.ReportInvocations)
	check, _ := json.Marshal(r.Check)
	fmt.Fprintf(&b, "<p>Prices: %s, as of %s. Check: <code>%s</code></p>\n</body></html>\n", html.EscapeString(r.Region), html.EscapeString(r.PricesAsOf), html.EscapeString(string(check)))
	_, err := io.WriteString(w, b.String())
	return err
}
