// Package redact hides the credentials a value can carry, so that messages
// and diffs can show the rest of it.
package redact

import "strings"

// Hidden stands where a credential was.
const Hidden = "xxxxx"

// URL returns s with the credentials a URL can carry hidden: the password
// of its userinfo (all of the userinfo when there is no password, as a
// token is often sent as the user name), every query value, and the
// fragment. It works on the text, so a URL that does not parse is hidden
// too, and text without a scheme has whatever is before its last "@"
// hidden. Text with none of these comes back unchanged.
func URL(s string) string {
	scheme, rest, isURL := strings.Cut(s, "://")
	if isURL {
		scheme += "://"
	} else {
		scheme, rest = "", s
	}
	// The userinfo ends at the last "@": a password may hold "/", "?" or "#".
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		user := Hidden
		if name, _, ok := strings.Cut(rest[:at], ":"); ok {
			user = name + ":" + Hidden
		}
		rest = user + rest[at:]
	}
	if !isURL {
		return scheme + rest
	}
	rest, _, hasFragment := strings.Cut(rest, "#")
	if base, query, ok := strings.Cut(rest, "?"); ok {
		params := strings.Split(query, "&")
		for i, p := range params {
			if name, _, ok := strings.Cut(p, "="); ok {
				params[i] = name + "=" + Hidden
			} else if p != "" {
				params[i] = Hidden
			}
		}
		rest = base + "?" + strings.Join(params, "&")
	}
	if hasFragment {
		rest += "#" + Hidden
	}
	return scheme + rest
}
