package notify

import (
	"testing"

	"regctl/pkg/distconfig"
)

func TestQueueRoot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ dir, config, want string }{
		{"", "/etc/regctl/config.yml", "/etc/regctl/notifications"},
		{"", "", "regctl-notifications"},
		{"queues", "/etc/regctl/config.yml", "/etc/regctl/queues"},
		{"/var/spool/regctl", "/etc/regctl/config.yml", "/var/spool/regctl"},
		{"queues", "", "queues"},
	} {
		var cfg distconfig.Config
		cfg.Notifications.Queue.Directory = tc.dir
		if got := QueueRoot(&cfg, tc.config); got != tc.want {
			t.Errorf("QueueRoot(%q, %q) = %s, want %s", tc.dir, tc.config, got, tc.want)
		}
	}
}
