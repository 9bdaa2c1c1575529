package redact

import "testing"

func TestURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://gitlab.example.com/api/v4/events", "https://gitlab.example.com/api/v4/events"},
		{"http://user:PASSWORD@host:8080/path", "http://user:xxxxx@host:8080/path"},
		{"http://TOKEN@host/path", "http://xxxxx@host/path"},
		{"http://host/path?token=TOKEN&mode=x", "http://host/path?token=xxxxx&mode=xxxxx"},
		{"http://host/path?TOKEN", "http://host/path?xxxxx"},
		{"http://host/path#TOKEN", "http://host/path#xxxxx"},
		{"http://user:PASS@WORD@host/?token=TOKEN#FRAG", "http://user:xxxxx@host/?token=xxxxx#xxxxx"},
		// A password holding "/", "?" or "#" hides up to the last "@".
		{"http://user:PA/SS?W#RD@host/x", "http://user:xxxxx@host/x"},
		// Not a URL that parses: still hidden.
		{"http://user:PASS WORD@ho st/%zz", "http://user:xxxxx@ho st/%zz"},
		{"user:PASSWORD@host", "user:xxxxx@host"},
		{"ftp://x", "ftp://x"},
		{"", ""},
		{"v?[0-9]+", "v?[0-9]+"},
	} {
		if got := URL(tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
