package catalog

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestScalingActivitiesAndCooldowns(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if err := s.InitScalingState(ctx); err != nil {
		t.Fatal(err)
	}
	const ns, rid, dim = "sagemaker", "endpoint/e/variant/v", "sagemaker:variant:DesiredInstanceCount"
	act := func(i int) *ScalingActivity {
		return &ScalingActivity{ActivityId: fmt.Sprintf("a%d", i), ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim,
			Description: fmt.Sprintf("Setting desired instance count to %d.", i), StatusCode: "Successful"}
	}
	// Not registered: nothing is recorded.
	if err := s.AddScalingActivity(ctx, act(0), 3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("activity of an unregistered target: %v", err)
	}
	if err := s.PutScalingCooldown(ctx, &ScalingCooldown{ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cooldown of an unregistered target: %v", err)
	}
	if err := s.PutScalableTarget(ctx, &ScalableTarget{ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim, MinCapacity: 1, MaxCapacity: 4}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if err := s.AddScalingActivity(ctx, act(i), 3); err != nil {
			t.Fatal(err)
		}
	}
	ends := time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC)
	if err := s.PutScalingCooldown(ctx, &ScalingCooldown{ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim, ScaleOutTo: 3, ScaleOutCooldownEnds: ends}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = reopen(t, path)
	if err := s.InitScalingState(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListScalingActivities(ctx, ns, rid, dim)
	if err != nil || len(got) != 3 || got[0].ActivityId != "a3" || got[2].ActivityId != "a5" {
		t.Fatalf("activities after reopen: %v, %v; want a3..a5 oldest first", ids(got), err)
	}
	c, err := s.GetScalingCooldown(ctx, ns, rid, dim)
	if err != nil || c.ScaleOutTo != 3 || !c.ScaleOutCooldownEnds.Equal(ends) {
		t.Fatalf("cooldown after reopen: %+v, %v", c, err)
	}
	// Deregistering the target deletes both.
	if err := s.DeleteScalableTarget(ctx, ns, rid, dim); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ListScalingActivities(ctx, ns, rid, dim); err != nil || len(got) != 0 {
		t.Fatalf("activities after deregistering: %v, %v", ids(got), err)
	}
	if _, err := s.GetScalingCooldown(ctx, ns, rid, dim); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cooldown after deregistering: %v", err)
	}
}

func ids(as []*ScalingActivity) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.ActivityId)
	}
	return out
}
