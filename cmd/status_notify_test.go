package cmd

import (
	"bytes"
	"strings"
	"testing"

	"regctl/internal/ui"
	"regctl/pkg/notify"
	"regctl/pkg/service"
)

func TestPrintNotifications(t *testing.T) {
	var buf bytes.Buffer
	p := ui.New(&buf, ui.Text, true)
	printNotifications(p, []service.NotificationBacklog{
		{Name: "idle", URL: "http://a/", Pending: 0},
		{Name: "gitlab", URL: "https://gitlab.example.com/events", Pending: 12,
			Live: &notify.Stats{Successes: 40, Failures: 3, Errors: 2, Dropped: 5,
				LastError: "endpoint answered 302 redirect to https://other.example/x; redirects are not followed"}},
		{Name: "off", URL: "http://c/", Disabled: true, Pending: 4},
		{Name: "broken", URL: "http://d/", Queue: "/q/broken", Error: "permission denied"},
	})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := [][]string{
		{"ok", "notifications idle", "http://a/: 0 pending"},
		{"FAIL", "notifications gitlab", "12 pending", "40 delivered", "3 failed attempts", "2 errors", "5 dropped",
			"last attempt failed: endpoint answered 302 redirect to https://other.example/x; redirects are not followed"},
		{"notifications off", "disabled, 4 pending"},
		{"FAIL", "notifications broken", "/q/broken unreadable: permission denied"},
	}
	if len(lines) != len(want) {
		t.Fatalf("lines:\n%s", buf.String())
	}
	for i, parts := range want {
		for _, part := range parts {
			if !strings.Contains(lines[i], part) {
				t.Errorf("line %d %q lacks %q\n%s", i, lines[i], part, buf.String())
			}
		}
	}
}
