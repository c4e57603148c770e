package advisor

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteText prints the advice for people: the recommendation, the rules
// that chose it, the table of modes, and notes.
func (a *Advice) WriteText(w io.Writer, withRules bool) error {
	name := a.Workload.Name
	if name == "" {
		name = "workload"
	}
	fmt.Fprintf(w, "%s: recommended mode %s\n", name, a.Recommended)
	fmt.Fprintf(w, "traffic: %s\n", a.Traffic)
	for _, r := range a.Reasons {
		fmt.Fprintf(w, "  because %s\n", r)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODE\tMONTHLY COST\tEXPECTED LATENCY\tREPLAY / RULED OUT BY")
	for _, r := range a.Rows {
		mark := r.Mode
		if r.Mode == a.Recommended {
			mark += " *"
		}
		switch {
		case !r.Fits:
			fmt.Fprintf(tw, "%s\t-\t-\truled out: %s\n", mark, r.RuledBy)
		case r.Unpriced != "":
			fmt.Fprintf(tw, "%s\tUNPRICED\t%s\t%s; %s\n", mark, r.Latency, r.Detail, r.Unpriced)
		default:
			fmt.Fprintf(tw, "%s\t$%.2f\t%s\t%s\n", mark, r.MonthlyUSD, r.Latency, r.Detail)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range a.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if withRules {
		fmt.Fprintf(w, "\n%s\n", Rules)
	}
	return nil
}
