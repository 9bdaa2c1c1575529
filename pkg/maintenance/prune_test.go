package maintenance

import (
	"testing"
	"time"

	"regctl/pkg/storage"
)

func TestPruneNodes(t *testing.T) {
	d, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Now()
	for id, seen := range map[string]time.Time{"fresh": now, "gone-hour": now.Add(-time.Hour), "gone-days": now.Add(-72 * time.Hour)} {
		if err := Heartbeat(ctx, d, Node{ID: id, LastSeen: seen}); err != nil {
			t.Fatal(err)
		}
	}
	pruned, err := PruneNodes(ctx, d, 24*time.Hour)
	if err != nil || len(pruned) != 1 || pruned[0] != "gone-days" {
		t.Fatalf("pruned %v, %v; want [gone-days]", pruned, err)
	}
	nodes, err := Nodes(ctx, d, time.Second)
	if err != nil || len(nodes) != 2 || nodes[0].ID != "fresh" || nodes[1].ID != "gone-hour" || !nodes[1].Gone {
		t.Fatalf("left: %+v, %v", nodes, err)
	}
}
