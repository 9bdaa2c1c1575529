// Package cleanup applies GitLab's tag cleanup policies (its
// ContainerExpirationPolicy) to a registry through the registry's HTTP
// API: the policies of the settings file, matched to repositories by
// glob; the algorithm, a pure function from tags to a plan with a reason
// per tag; and a runner that lists, decides and deletes tags by name.
package cleanup

import (
	"fmt"
	"regexp"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"regctl/pkg/settings"
)

// Policy is a compiled [[registry.cleanup_policies]] entry.
type Policy struct {
	Name          string
	Repositories  []string
	Enabled       bool
	KeepN         int
	NameRegex     string
	NameRegexKeep string
	// OlderThan is the age a tag must exceed to be deleted; HasAge is
	// false when older_than is unset, and then age keeps nothing.
	OlderThan time.Duration
	HasAge    bool

	del, keep *regexp.Regexp
}

// Compile checks and compiles one policy as GitLab reads it: each regex
// anchored as \A(?:re)\z, an unset one matching no tag name.
func Compile(p settings.CleanupPolicy) (*Policy, error) {
	out := &Policy{
		Name: p.Name, Repositories: p.Repositories, Enabled: p.Enabled, KeepN: p.KeepN,
		NameRegex: p.NameRegex, NameRegexKeep: p.NameRegexKeep,
	}
	var err error
	if out.del, err = anchored(p.NameRegex); err != nil {
		return nil, fmt.Errorf("policy %q: name_regex: %w", p.Name, err)
	}
	if out.keep, err = anchored(p.NameRegexKeep); err != nil {
		return nil, fmt.Errorf("policy %q: name_regex_keep: %w", p.Name, err)
	}
	if p.KeepN < 0 {
		return nil, fmt.Errorf("policy %q: keep_n must not be negative", p.Name)
	}
	if p.OlderThan != "" {
		if out.OlderThan, err = settings.ParseAge(p.OlderThan); err != nil {
			return nil, fmt.Errorf("policy %q: older_than: %w", p.Name, err)
		}
		out.HasAge = true
	}
	for _, g := range p.Repositories {
		if !ValidGlob(g) {
			return nil, fmt.Errorf("policy %q: repositories: %q is not a valid glob", p.Name, g)
		}
	}
	return out, nil
}

// anchored is GitLab's Gitlab::UntrustedRegexp.new("\A#{re}\z"), with the
// expression grouped so that an alternation stays inside the anchors.
func anchored(re string) (*regexp.Regexp, error) {
	return regexp.Compile(`\A(?:` + re + `)\z`)
}

// CompileAll compiles every policy, in order.
func CompileAll(ps []settings.CleanupPolicy) ([]*Policy, error) {
	out := make([]*Policy, 0, len(ps))
	for _, p := range ps {
		c, err := Compile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Matches tells whether one of the policy's globs matches the repository.
func (p *Policy) Matches(repo string) bool {
	return MatchGlobs(p.Repositories, repo)
}

// MatchGlobs tells whether any glob (doublestar: * within a path
// segment, ** across segments) matches the repository path.
func MatchGlobs(globs []string, repo string) bool {
	for _, g := range globs {
		if ok, _ := doublestar.Match(g, repo); ok {
			return true
		}
	}
	return false
}

// ValidGlob tells whether g is a glob MatchGlobs accepts.
func ValidGlob(g string) bool { return g != "" && doublestar.ValidatePattern(g) }

// For is the policy of a repository: the first whose glob matches it,
// nil when none does. A disabled policy still claims its repositories,
// so an earlier disabled policy exempts them from later ones.
func For(policies []*Policy, repo string) *Policy {
	for _, p := range policies {
		if p.Matches(repo) {
			return p
		}
	}
	return nil
}
