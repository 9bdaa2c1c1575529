package serve

import (
	"io"
	"log/slog"
	"slices"

	"regctl/pkg/distconfig"
)

// NewLogger is the daemon's logger for a config's log section: one JSON
// object a line for json (and Distribution's logstash), key=value lines
// (logfmt) for text and logfmt; log.fields added to every line; the level
// read from level, which SIGHUP changes.
func NewLogger(w io.Writer, l distconfig.Log, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch l.Formatter {
	case "json", "logstash":
		h = slog.NewJSONHandler(w, opts)
	default:
		h = slog.NewTextHandler(w, opts)
	}
	log := slog.New(h)
	if len(l.Fields) > 0 {
		keys := make([]string, 0, len(l.Fields))
		for k := range l.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		args := make([]any, 0, 2*len(keys))
		for _, k := range keys {
			args = append(args, k, l.Fields[k])
		}
		log = log.With(args...)
	}
	return log
}
