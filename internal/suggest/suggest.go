// Package suggest finds the known name a mistyped one was meant to be,
// for "unknown key (did you mean ...?)" messages in settings and configs.
package suggest

import "strings"

// Nearest returns the name in known closest to key by edit distance
// (ignoring case), or "" when none is close enough to be a likely typo.
// An abbreviation ("rootdir" for "rootdirectory") counts as close.
func Nearest(key string, known []string) string {
	best, bestD := "", len(key)/3+2
	lk := strings.ToLower(key)
	for _, n := range known {
		ln := strings.ToLower(n)
		if ln == lk {
			return n
		}
		d := editDistance(lk, ln)
		if len(lk) >= 4 && strings.HasPrefix(ln, lk) {
			d = min(d, 1)
		}
		if d < bestD || (d == bestD && best != "" && n < best) {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
