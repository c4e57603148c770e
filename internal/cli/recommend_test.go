package cli_test

import (
	"strings"
	"testing"
)

func TestCostRecommendCLI(t *testing.T) {
	url := costServer(t)
	out, err := runCost(t, url, "--from", "2026-03-02", "--to", "2026-03-03", "--recommend")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// fraud: one ml.m5.large all day ($2.76) for 7,200 requests of 200 ms:
	// serverless bills 1,440 s × 2 GB × $0.00002 = $0.0576.
	want := "- endpoint fraud was idle 98% of the time: serverless would have cost $0.0576 (−98%) instead of $2.76, adding a cold start to 0.014% of requests"
	if !strings.Contains(out, want) {
		t.Errorf("no %q in\n%s", want, out)
	}
	if strings.Contains(out, "endpoint recs") {
		t.Errorf("a recommendation for the serverless endpoint, cheaper where it is:\n%s", out)
	}
	golden(t, "cost-recommend", out)
}
