package cleanup

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"regctl/pkg/settings"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func daysAgo(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }

func mustPolicy(t *testing.T, p settings.CleanupPolicy) *Policy {
	t.Helper()
	if p.Name == "" {
		p.Name = "p"
	}
	c, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tags builds tags from "name:days" (days ago; "-" for no date; a "+"
// suffix marks an index).
func tags(specs ...string) []Tag {
	var out []Tag
	for _, s := range specs {
		name, age, _ := strings.Cut(s, ":")
		t := Tag{Name: name}
		if strings.HasSuffix(age, "+") {
			t.Index = true
			age = strings.TrimSuffix(age, "+")
		}
		if age != "-" {
			var n int
			for _, c := range age {
				n = n*10 + int(c-'0')
			}
			t.Created = daysAgo(n)
		}
		out = append(out, t)
	}
	return out
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name   string
		policy settings.CleanupPolicy
		tags   []Tag
		want   map[string]Reason // every tag's reason
	}{
		{
			name:   "latest is never deleted",
			policy: settings.CleanupPolicy{NameRegex: ".*"},
			tags:   tags("latest:400", "v1:400"),
			want:   map[string]Reason{"latest": ReasonLatest, "v1": ReasonDeleted},
		},
		{
			name:   "latest is never deleted, even when only the keep regex could save it",
			policy: settings.CleanupPolicy{NameRegex: "lat.*", OlderThan: "1d"},
			tags:   tags("latest:400", "lately:400"),
			want:   map[string]Reason{"latest": ReasonLatest, "lately": ReasonDeleted},
		},
		{
			// regctl's one difference: a referrers tag lists an image's
			// signatures; it neither goes nor takes a keep_n place.
			name:   "referrers tags are never deleted nor counted",
			policy: settings.CleanupPolicy{NameRegex: ".*", KeepN: 1},
			tags: tags("sha256-"+strings.Repeat("a", 64)+":400", "sha512-"+strings.Repeat("b", 64)+":-",
				"sha256-"+strings.Repeat("c", 64)+".sig:300", "sha256-abc:200", "v1:100", "v2:50"),
			want: map[string]Reason{"sha256-" + strings.Repeat("a", 64): ReasonReferrers, "sha512-" + strings.Repeat("b", 64): ReasonReferrers,
				"sha256-" + strings.Repeat("c", 64) + ".sig": ReasonDeleted, "sha256-abc": ReasonDeleted, "v1": ReasonDeleted, "v2": ReasonKeepN},
		},
		{
			name:   "an unset name_regex deletes nothing",
			policy: settings.CleanupPolicy{},
			tags:   tags("v1:400", "v2:-", "main:1", "latest:400"),
			want:   map[string]Reason{"v1": ReasonNoMatch, "v2": ReasonNoMatch, "main": ReasonNoMatch, "latest": ReasonLatest},
		},
		{
			name:   "the keep regex wins over the delete regex",
			policy: settings.CleanupPolicy{NameRegex: ".*", NameRegexKeep: "v.*|main"},
			tags:   tags("v1:400", "main:400", "feature:400"),
			want:   map[string]Reason{"v1": ReasonKeepRegex, "main": ReasonKeepRegex, "feature": ReasonDeleted},
		},
		{
			name: "keep_n counts after the regex filter",
			// The two newest tags do not match: keep_n keeps the two
			// newest of those that do.
			policy: settings.CleanupPolicy{NameRegex: "v.*", KeepN: 2},
			tags:   tags("main:1", "dev:2", "v1:30", "v2:20", "v3:10", "v4:5"),
			want: map[string]Reason{"main": ReasonNoMatch, "dev": ReasonNoMatch,
				"v4": ReasonKeepN, "v3": ReasonKeepN, "v2": ReasonDeleted, "v1": ReasonDeleted},
		},
		{
			name:   "keep_n counts after the keep regex",
			policy: settings.CleanupPolicy{NameRegex: ".*", NameRegexKeep: "stable", KeepN: 1},
			tags:   tags("stable:1", "a:2", "b:3"),
			want:   map[string]Reason{"stable": ReasonKeepRegex, "a": ReasonKeepN, "b": ReasonDeleted},
		},
		{
			name:   "a tag with no date sorts as newest",
			policy: settings.CleanupPolicy{NameRegex: ".*", KeepN: 1},
			tags:   tags("old:300", "nodate:-", "new:1"),
			want:   map[string]Reason{"nodate": ReasonKeepN, "new": ReasonDeleted, "old": ReasonDeleted},
		},
		{
			name:   "a tag with no date is never deleted by age",
			policy: settings.CleanupPolicy{NameRegex: ".*", OlderThan: "7d"},
			tags:   tags("nodate:-", "old:30", "young:3"),
			want:   map[string]Reason{"nodate": ReasonNoDate, "old": ReasonDeleted, "young": ReasonTooYoung},
		},
		{
			name:   "without older_than a tag with no date past keep_n is deleted",
			policy: settings.CleanupPolicy{NameRegex: ".*", KeepN: 1},
			tags:   tags("a:-", "b:-"),
			want:   map[string]Reason{"a": ReasonKeepN, "b": ReasonDeleted},
		},
		{
			name:   "a multi-arch tag is never deleted by age, but sorts by its date",
			policy: settings.CleanupPolicy{NameRegex: ".*", KeepN: 1, OlderThan: "7d"},
			tags:   tags("idx-new:1+", "idx-old:300+", "img:300"),
			want:   map[string]Reason{"idx-new": ReasonKeepN, "idx-old": ReasonNoDate, "img": ReasonDeleted},
		},
		{
			name:   "anchoring: v1 does not match v1.2",
			policy: settings.CleanupPolicy{NameRegex: "v1"},
			tags:   tags("v1:400", "v1.2:400", "xv1:400"),
			want:   map[string]Reason{"v1": ReasonDeleted, "v1.2": ReasonNoMatch, "xv1": ReasonNoMatch},
		},
		{
			name:   "anchoring: the keep regex is anchored too",
			policy: settings.CleanupPolicy{NameRegex: ".*", NameRegexKeep: "v1"},
			tags:   tags("v1:400", "v1.2:400"),
			want:   map[string]Reason{"v1": ReasonKeepRegex, "v1.2": ReasonDeleted},
		},
		{
			name:   "anchoring: an alternation stays inside the anchors",
			policy: settings.CleanupPolicy{NameRegex: "a|b"},
			tags:   tags("a:400", "b:400", "ab:400", "xb:400"),
			want:   map[string]Reason{"a": ReasonDeleted, "b": ReasonDeleted, "ab": ReasonNoMatch, "xb": ReasonNoMatch},
		},
		{
			name:   "older_than: only strictly older tags go",
			policy: settings.CleanupPolicy{NameRegex: ".*", OlderThan: "2w"},
			tags:   tags("d13:13", "d14:14", "d15:15"),
			want:   map[string]Reason{"d13": ReasonTooYoung, "d14": ReasonTooYoung, "d15": ReasonDeleted},
		},
		{
			name:   "keep_n larger than the list keeps everything",
			policy: settings.CleanupPolicy{NameRegex: ".*", KeepN: 10},
			tags:   tags("a:1", "b:2"),
			want:   map[string]Reason{"a": ReasonKeepN, "b": ReasonKeepN},
		},
		{
			name:   "equal dates: keep_n keeps by name",
			policy: settings.CleanupPolicy{NameRegex: ".*", KeepN: 1},
			tags:   tags("b:5", "a:5", "c:5"),
			want:   map[string]Reason{"a": ReasonKeepN, "b": ReasonDeleted, "c": ReasonDeleted},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := Evaluate(tt.tags, mustPolicy(t, tt.policy), now)
			got := map[string]Reason{}
			for _, d := range plan.Decisions {
				got[d.Name] = d.Reason
				if d.Delete != (d.Reason == ReasonDeleted) {
					t.Errorf("%s: delete=%v with reason %q", d.Name, d.Delete, d.Reason)
				}
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("reasons:\n got %v\nwant %v", got, tt.want)
			}
			var wantDel []string
			for name, r := range tt.want {
				if r == ReasonDeleted {
					wantDel = append(wantDel, name)
				}
			}
			slices.Sort(wantDel)
			if del := plan.Delete(); !slices.Equal(del, wantDel) {
				t.Errorf("Delete() = %v, want %v", del, wantDel)
			}
			// The last step's list is what gets deleted.
			last := plan.Steps[len(plan.Steps)-1].Tags
			slices.Sort(last)
			if !slices.Equal(last, wantDel) && !(len(last) == 0 && len(wantDel) == 0) {
				t.Errorf("last step %v, deleted %v", last, wantDel)
			}
		})
	}
}

// The steps are the guide's lists after each filter, the third in the
// order the sort leaves them.
func TestEvaluateSteps(t *testing.T) {
	pol := mustPolicy(t, settings.CleanupPolicy{NameRegex: "v.*", NameRegexKeep: "v0", KeepN: 1, OlderThan: "7d"})
	plan := Evaluate(tags("latest:1", "main:1", "v0:99", "v1:30", "v2:20", "v3:3", "v4:-"), pol, now)
	want := []Step{
		{"all tags, less latest", []string{"main", "v0", "v1", "v2", "v3", "v4"}},
		{"matching name_regex, not name_regex_keep", []string{"v1", "v2", "v3", "v4"}},
		{"newest first, less the first keep_n", []string{"v3", "v2", "v1"}},
		{"older than older_than", []string{"v2", "v1"}},
	}
	if len(plan.Steps) != len(want) {
		t.Fatalf("steps %v", plan.Steps)
	}
	for i := range want {
		if plan.Steps[i].Name != want[i].Name || !slices.Equal(plan.Steps[i].Tags, want[i].Tags) {
			t.Errorf("step %d = %v, want %v", i, plan.Steps[i], want[i])
		}
	}
	if c := plan.Count(); c[ReasonDeleted] != 2 || c[ReasonKeepN] != 1 || c[ReasonTooYoung] != 1 || c[ReasonKeepRegex] != 1 || c[ReasonLatest] != 1 || c[ReasonNoMatch] != 1 {
		t.Errorf("counts %v", c)
	}
}

func TestPolicyFor(t *testing.T) {
	var pols []*Policy
	for _, p := range []settings.CleanupPolicy{
		{Name: "off", Repositories: []string{"group/legacy/**"}},
		{Name: "apps", Repositories: []string{"group/*/app"}, Enabled: true},
		{Name: "group", Repositories: []string{"group/**", "other"}, Enabled: true},
	} {
		pols = append(pols, mustPolicy(t, p))
	}
	for repo, want := range map[string]string{
		"group/legacy/x/y": "off", // the first match claims it, disabled or not
		"group/a/app":      "apps",
		"group/a/b/app":    "group", // * stays within one segment
		"group/app":        "group",
		"other":            "group",
		"other/sub":        "",
		"groupx/app":       "",
	} {
		got := ""
		if p := For(pols, repo); p != nil {
			got = p.Name
		}
		if got != want {
			t.Errorf("For(%q) = %q, want %q", repo, got, want)
		}
	}
}

func TestCompileRejects(t *testing.T) {
	for _, p := range []settings.CleanupPolicy{
		{Name: "re", NameRegex: "(x"},
		{Name: "keep", NameRegexKeep: "[z"},
		{Name: "n", KeepN: -1},
		{Name: "age", OlderThan: "soon"},
		{Name: "glob", Repositories: []string{"a/[b"}},
	} {
		if _, err := Compile(p); err == nil || !strings.Contains(err.Error(), `"`+p.Name+`"`) {
			t.Errorf("Compile(%+v) = %v, want an error naming the policy", p, err)
		}
	}
}
