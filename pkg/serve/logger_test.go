package serve

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"regctl/pkg/distconfig"
)

// parseLogfmt reads one logfmt line: key=value pairs, values bare or
// double-quoted with Go escapes. It fails on anything else.
func parseLogfmt(t *testing.T, line string) map[string]string {
	t.Helper()
	out := map[string]string{}
	s := line
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || strings.ContainsAny(s[:eq], " \"") {
			t.Fatalf("not logfmt (key): %q", line)
		}
		key := s[:eq]
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			end := 1
			for ; end < len(s); end++ {
				if s[end] == '\\' {
					end++
					continue
				}
				if s[end] == '"' {
					break
				}
			}
			if end >= len(s) {
				t.Fatalf("not logfmt (unterminated quote): %q", line)
			}
			if err := json.Unmarshal([]byte(s[:end+1]), &val); err != nil {
				t.Fatalf("not logfmt (quoted value %s): %v", s[:end+1], err)
			}
			s = s[end+1:]
		} else {
			sp := strings.IndexByte(s, ' ')
			if sp < 0 {
				sp = len(s)
			}
			val = s[:sp]
			s = s[sp:]
		}
		out[key] = val
		if s != "" && s[0] != ' ' {
			t.Fatalf("not logfmt (junk after value): %q", line)
		}
		s = strings.TrimPrefix(s, " ")
	}
	return out
}

func TestLogFormats(t *testing.T) {
	fields := map[string]string{"service": "registry", "env": "prod"}
	for _, formatter := range []string{"text", "logfmt", "json", "logstash"} {
		t.Run(formatter, func(t *testing.T) {
			var buf bytes.Buffer
			level := new(slog.LevelVar)
			log := NewLogger(&buf, distconfig.Log{Level: "info", Formatter: formatter, Fields: fields}, level)
			log.Info("request", "path", `/v2/a b/"x"=y`, "status", 200)
			log.Debug("hidden at info")
			level.Set(slog.LevelWarn) // what SIGHUP does
			log.Info("hidden at warn")
			log.Warn("kept")
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 2 {
				t.Fatalf("lines = %q, want the info and the warn line", lines)
			}
			var recs []map[string]string
			for _, l := range lines {
				if formatter == "json" || formatter == "logstash" {
					var m map[string]any
					if err := json.Unmarshal([]byte(l), &m); err != nil {
						t.Fatalf("not a JSON line: %q", l)
					}
					r := map[string]string{}
					for k, v := range m {
						r[k] = strings.Trim(strings.TrimSpace(jsonText(v)), `"`)
					}
					recs = append(recs, r)
				} else {
					recs = append(recs, parseLogfmt(t, l))
				}
			}
			r := recs[0]
			if r["msg"] != "request" || r["level"] != "INFO" || r["path"] != `/v2/a b/"x"=y` || r["status"] != "200" ||
				r["service"] != "registry" || r["env"] != "prod" || r["time"] == "" {
				t.Errorf("first line = %v", r)
			}
			if recs[1]["msg"] != "kept" || recs[1]["level"] != "WARN" {
				t.Errorf("second line = %v", recs[1])
			}
		})
	}
}

func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}
