package cleanup

import (
	"cmp"
	"regexp"
	"slices"
	"time"
)

// Tag is one tag of a repository as the algorithm sees it.
type Tag struct {
	Name string `json:"name"`
	// Created is the image config's "created"; for an index, the newest
	// among its platform images. Zero when unknown.
	Created time.Time `json:"created,omitzero"`
	// Index is set for a multi-arch tag (an image index or manifest
	// list): GitLab has no date for it, so age never deletes it.
	Index bool `json:"index,omitempty"`
	// Digest is the manifest the tag points at (informational).
	Digest string `json:"digest,omitempty"`
}

// Reason says why a tag is kept or deleted.
type Reason string

// The reasons, one per step of the algorithm that can decide a tag.
const (
	ReasonLatest    Reason = "latest"             // step 1: latest is never deleted
	ReasonReferrers Reason = "referrers tag"      // step 1: a subject's list of signatures and SBOMs
	ReasonNoMatch   Reason = "no match"           // step 2: name_regex does not match
	ReasonKeepRegex Reason = "keep regex"         // step 2: name_regex_keep matches
	ReasonKeepN     Reason = "among the newest N" // step 3: one of the first keep_n
	ReasonTooYoung  Reason = "too young"          // step 4: not older than older_than
	ReasonNoDate    Reason = "no date"            // step 4: no date (or multi-arch): age never deletes it
	ReasonDeleted   Reason = "deleted"            // step 5
)

// Decision is the verdict on one tag.
type Decision struct {
	Tag
	Delete bool   `json:"delete"`
	Reason Reason `json:"reason"`
}

// Step is the list of tags still to be deleted after one step of the
// algorithm, as the admin guide's "investigate a cleanup policy" prints
// them.
type Step struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// Plan is the outcome of the algorithm for one repository.
type Plan struct {
	// Decisions has one entry per tag, sorted by name.
	Decisions []Decision `json:"decisions"`
	// Steps are the tag lists after each step, in order.
	Steps []Step `json:"steps"`
}

// Delete lists the tags to delete, sorted by name.
func (p *Plan) Delete() []string {
	var out []string
	for _, d := range p.Decisions {
		if d.Delete {
			out = append(out, d.Name)
		}
	}
	return out
}

// Count tells how many tags each reason decided.
func (p *Plan) Count() map[Reason]int {
	out := map[Reason]int{}
	for _, d := range p.Decisions {
		out[d.Reason]++
	}
	return out
}

// Evaluate is GitLab's cleanup of one repository's tags under pol at
// now, step by step:
//
//  1. all tags, less latest (and, regctl's one difference, less the
//     referrers tags: see IsReferrersTag);
//  2. those matching \A(?:name_regex)\z and not \A(?:name_regex_keep)\z;
//  3. sorted by date, newest first (no date counts as now; equal dates by
//     name), less the first keep_n;
//  4. those with a date older than now - older_than (no date: never;
//     without older_than, all of them);
//  5. deleted.
func Evaluate(tags []Tag, pol *Policy, now time.Time) *Plan {
	reason := make(map[string]Reason, len(tags))
	var cur []Tag
	for _, t := range tags {
		switch {
		case t.Name == "latest":
			reason[t.Name] = ReasonLatest
		case IsReferrersTag(t.Name):
			reason[t.Name] = ReasonReferrers
		default:
			cur = append(cur, t)
		}
	}
	p := &Plan{}
	record := func(name string) {
		s := Step{Name: name, Tags: []string{}}
		for _, t := range cur {
			s.Tags = append(s.Tags, t.Name)
		}
		p.Steps = append(p.Steps, s)
	}
	slices.SortFunc(cur, func(a, b Tag) int { return cmp.Compare(a.Name, b.Name) })
	if slices.ContainsFunc(tags, func(t Tag) bool { return reason[t.Name] == ReasonReferrers }) {
		record("all tags, less latest and referrers tags")
	} else {
		record("all tags, less latest")
	}

	cur = slices.DeleteFunc(cur, func(t Tag) bool {
		switch {
		case !pol.del.MatchString(t.Name):
			reason[t.Name] = ReasonNoMatch
		case pol.keep.MatchString(t.Name):
			reason[t.Name] = ReasonKeepRegex
		default:
			return false
		}
		return true
	})
	record("matching name_regex, not name_regex_keep")

	date := func(t Tag) time.Time {
		if t.Created.IsZero() {
			return now
		}
		return t.Created
	}
	slices.SortStableFunc(cur, func(a, b Tag) int {
		return cmp.Or(date(b).Compare(date(a)), cmp.Compare(a.Name, b.Name))
	})
	n := min(pol.KeepN, len(cur))
	for _, t := range cur[:n] {
		reason[t.Name] = ReasonKeepN
	}
	cur = cur[n:]
	record("newest first, less the first keep_n")

	if pol.HasAge {
		cutoff := now.Add(-pol.OlderThan)
		cur = slices.DeleteFunc(cur, func(t Tag) bool {
			switch {
			case t.Created.IsZero() || t.Index:
				reason[t.Name] = ReasonNoDate
			case !t.Created.Before(cutoff):
				reason[t.Name] = ReasonTooYoung
			default:
				return false
			}
			return true
		})
	}
	record("older than older_than")

	for _, t := range cur {
		reason[t.Name] = ReasonDeleted
	}
	for _, t := range tags {
		r := reason[t.Name]
		p.Decisions = append(p.Decisions, Decision{Tag: t, Delete: r == ReasonDeleted, Reason: r})
	}
	slices.SortFunc(p.Decisions, func(a, b Decision) int { return cmp.Compare(a.Name, b.Name) })
	return p
}

// referrersTag is the referrers tag schema's tag of a sha256 or sha512
// subject: the algorithm, "-", and the first 64 hex digits.
var referrersTag = regexp.MustCompile(`^sha(256|512)-[0-9a-f]{64}$`)

// IsReferrersTag tells the tags that the referrers tag schema gives an
// image's list of signatures, SBOMs and attestations (cosign and oras
// keep them so on registries without the referrers API, and regctl with
// [registry.referrers] fallback_tags). Such a tag is no image of its own:
// deleting it would hide an image's signatures from Distribution's
// clients, and from regctl's referrers API those pushed through
// Distribution. So cleanup never deletes one; GitLab's algorithm would.
func IsReferrersTag(tag string) bool { return referrersTag.MatchString(tag) }
