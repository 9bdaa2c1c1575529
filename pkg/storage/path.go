package storage

import (
	"fmt"
	"strings"
)

// CheckPath reports whether p is a valid driver path: "/" or "/"-separated
// non-empty elements with no "." or ".." element, no trailing "/" and no
// NUL. Every driver checks paths with it before touching its backend, so
// no path can climb out of the root, and the same path is refused by all
// drivers alike. ".." is refused only as a whole element: "v1..2" is a
// valid tag.
func CheckPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidPath, p, why) }
	switch {
	case p == "/":
		return nil
	case !strings.HasPrefix(p, "/"):
		return bad("not absolute")
	case strings.IndexByte(p, 0) >= 0:
		return bad("contains NUL")
	case strings.HasSuffix(p, "/"):
		return bad("ends with /")
	}
	for rest, more := p[1:], true; more; {
		var elem string
		elem, rest, more = strings.Cut(rest, "/")
		switch elem {
		case "":
			return bad("contains //")
		case ".", "..":
			return bad(fmt.Sprintf("contains a %q element", elem))
		}
	}
	return nil
}
