package token

import (
	"fmt"
	"slices"
	"strings"
)

// Resource types and actions the registry knows.
const (
	TypeRepository = "repository"
	TypeRegistry   = "registry"

	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
	// ActionAll grants every action on the resource.
	ActionAll = "*"
)

// maxNameLength is the registry's limit on a repository name.
const maxNameLength = 255

var repositoryActions = []string{ActionPull, ActionPush, ActionDelete, ActionAll}

const scopeForm = "want TYPE:NAME:ACTIONS, e.g. repository:group/project:pull,push or registry:catalog:*"

// ParseScope reads one scope as docker clients and GitLab write it:
// "repository:group/project:pull,push" or "registry:catalog:*". The name
// may itself hold colons (a registry host with a port), so the type ends at
// the first colon and the actions start after the last one. Only what the
// registry acts on is accepted, so a typo fails here rather than minting a
// token that silently grants nothing.
func ParseScope(s string) (ResourceActions, error) {
	typ, rest, ok := strings.Cut(s, ":")
	i := strings.LastIndexByte(rest, ':')
	if !ok || i < 0 {
		return ResourceActions{}, fmt.Errorf("scope %q: %s", s, scopeForm)
	}
	name, actions := rest[:i], rest[i+1:]
	r := ResourceActions{Type: typ, Name: name}
	if name == "" {
		return r, fmt.Errorf("scope %q: the resource name is empty; %s", s, scopeForm)
	}
	if actions == "" {
		return r, fmt.Errorf("scope %q: no actions; %s", s, scopeForm)
	}
	for _, a := range strings.Split(actions, ",") {
		if a == "" {
			return r, fmt.Errorf("scope %q: empty action in %q", s, actions)
		}
		if !slices.Contains(r.Actions, a) {
			r.Actions = append(r.Actions, a)
		}
	}
	switch typ {
	case TypeRepository:
		if !validRepositoryName(name) {
			return r, fmt.Errorf("scope %q: %q is not a valid repository name (lowercase letters, digits and separators . _ __ - between them, components joined by /)", s, name)
		}
		for _, a := range r.Actions {
			if !slices.Contains(repositoryActions, a) {
				return r, fmt.Errorf("scope %q: unknown action %q (repository actions are pull, push, delete and *)", s, a)
			}
		}
	case TypeRegistry:
		if name != "catalog" || len(r.Actions) != 1 || r.Actions[0] != ActionAll {
			return r, fmt.Errorf("scope %q: the only registry scope is registry:catalog:*", s)
		}
	case "":
		return r, fmt.Errorf("scope %q: the resource type is empty; %s", s, scopeForm)
	default:
		return r, fmt.Errorf("scope %q: unknown resource type %q (want repository or registry)", s, typ)
	}
	return r, nil
}

// validRepositoryName checks the OCI distribution spec's name grammar:
//
//	[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
func validRepositoryName(name string) bool {
	if len(name) > maxNameLength {
		return false
	}
	for _, comp := range strings.Split(name, "/") {
		if !validComponent(comp) {
			return false
		}
	}
	return true
}

func validComponent(c string) bool {
	alnum := func(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' }
	i := 0
	for {
		start := i
		for i < len(c) && alnum(c[i]) {
			i++
		}
		if i == start {
			return false // empty, or a separator not between alphanumerics
		}
		if i == len(c) {
			return true
		}
		switch {
		case c[i] == '.':
			i++
		case strings.HasPrefix(c[i:], "__"):
			i += 2
		case c[i] == '_':
			i++
		case c[i] == '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return false
		}
	}
}
