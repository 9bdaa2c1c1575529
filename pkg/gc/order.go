package gc

import (
	"regexp"
	"slices"
	"strings"
)

// sortRepos puts repositories in the order Distribution's catalog walk
// meets them on that storage, which its marking depends on (a layer link
// is judged against the marks of the repositories met so far).
//
// The filesystem driver walks folder by folder, each sorted by name, so
// "a" and everything below it come before "a-b": compare the paths to
// each "_manifests" folder component by component. A flat keyspace
// (storage.FlatKeyspace: S3) walks one listing in key order, where
// "a-b/..." comes before "a/...": compare the keys of the "_manifests/"
// prefixes byte by byte.
func sortRepos(repos []*repo, keyOrder bool) {
	key := func(r *repo) string { return r.name + "/_manifests/" }
	if keyOrder {
		slices.SortFunc(repos, func(a, b *repo) int { return strings.Compare(key(a), key(b)) })
		return
	}
	slices.SortFunc(repos, func(a, b *repo) int {
		return strings.Compare(strings.ReplaceAll(key(a), "/", "\x00"), strings.ReplaceAll(key(b), "/", "\x00"))
	})
}

// nameRegexp is the grammar Distribution checks a repository name
// against (reference.WithName): an optional registry host, then
// slash-separated lowercase path components.
var nameRegexp = func() *regexp.Regexp {
	const (
		component = `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
		hostPart  = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
		host      = `(?:` + hostPart + `(?:\.` + hostPart + `)*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?`
	)
	return regexp.MustCompile(`^(?:` + host + `/)?(` + component + `(?:/` + component + `)*)$`)
}()

// validRepoName reports whether Distribution accepts name; it stops its
// whole collection on one it does not.
func validRepoName(name string) bool {
	m := nameRegexp.FindStringSubmatch(name)
	return m != nil && len(m[1]) <= 255
}
