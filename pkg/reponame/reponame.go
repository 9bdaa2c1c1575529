// Package reponame is the repository name grammar of the OCI distribution
// spec, shared by the daemon (which checks every request) and the formats
// that carry names in storage keys (pkg/gconline).
package reponame

import "strings"

// MaxLength is Distribution's limit on a repository name.
const MaxLength = 255

// Valid reports whether name fits the OCI distribution spec's grammar
//
//	[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
//
// Checking names against it is also what keeps "..", a leading "/" or
// "%2e" from reaching the storage. (pkg/registryd's routes_test.go checks
// it against the regular expression; by hand it costs no regexp on every
// request.) It does not check MaxLength.
func Valid(name string) bool {
	for rest, more := name, true; more; {
		var comp string
		comp, rest, more = strings.Cut(rest, "/")
		if !validComponent(comp) {
			return false
		}
	}
	return true
}

// validComponent matches [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.
func validComponent(c string) bool {
	i := 0
	for {
		start := i
		for i < len(c) && (c[i] >= 'a' && c[i] <= 'z' || c[i] >= '0' && c[i] <= '9') {
			i++
		}
		if i == start {
			return false // an empty component, or a separator not between alphanumerics
		}
		if i == len(c) {
			return true
		}
		switch c[i] {
		case '.':
			i++
		case '_':
			i++
			if i < len(c) && c[i] == '_' {
				i++
			}
		case '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return false
		}
	}
}
