package notify

import (
	"path/filepath"

	"regctl/pkg/distconfig"
)

// QueueRoot is the folder holding the endpoints' queues (QueueDir of
// each): notifications.queue.directory (relative to the config file's
// folder), else a "notifications" folder beside the config file, else,
// for the embedded default (configPath ""), ./regctl-notifications.
// The daemon writes there; `regctl status` reads the backlogs there.
func QueueRoot(cfg *distconfig.Config, configPath string) string {
	dir := cfg.Notifications.Queue.Directory
	base := "."
	if configPath != "" {
		base = filepath.Dir(configPath)
	}
	switch {
	case dir != "" && filepath.IsAbs(dir):
		return dir
	case dir != "":
		return filepath.Join(base, dir)
	case configPath == "":
		return "regctl-notifications"
	}
	return filepath.Join(base, "notifications")
}
