package serve

import (
	"log/slog"
	"path/filepath"

	"regctl/pkg/distconfig"
	"regctl/pkg/notify"
)

// newNotifier opens the queues of the enabled endpoints; nil when there
// are none. It fails when the queue folder is not writable.
func newNotifier(cfg *distconfig.Config, configPath string, log *slog.Logger) (*notify.Manager, error) {
	enabled := 0
	for _, ep := range cfg.Notifications.Endpoints {
		if !ep.Disabled {
			enabled++
		}
	}
	if enabled == 0 {
		return nil, nil
	}
	dir := notify.QueueRoot(cfg, configPath)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	m, err := notify.New(notify.Config{
		Endpoints: cfg.Notifications.Endpoints,
		Dir:       dir,
		MaxEvents: cfg.Notifications.Queue.MaxEvents,
		Log:       log,
	})
	if err != nil {
		return nil, err
	}
	log.Info("notifications on", "endpoints", enabled, "queue", dir)
	return m, nil
}
