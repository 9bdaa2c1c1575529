package reconfigure

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/pmezard/go-difflib/difflib"

	"regctl/internal/fsutil"
	"regctl/pkg/settings"
)

// Change says what reconfigure did (or would do) to one file.
type Change string

const (
	Created   Change = "created"
	Updated   Change = "updated"
	Unchanged Change = "unchanged"
)

// FileResult is one file's outcome.
type FileResult struct {
	Path   string      `json:"path"`
	Role   string      `json:"role"`
	Change Change      `json:"change"`
	Mode   fs.FileMode `json:"mode"`
	// Group owns the file and may read it; "" for the default group.
	Group string `json:"group,omitempty"`
	// Note adds detail such as a mode change.
	Note string `json:"note,omitempty"`
	// Diff is a unified diff with secret values redacted (dry run only).
	Diff string `json:"diff,omitempty"`
}

// Result is what one reconfigure run did or, in a dry run, would do.
type Result struct {
	Settings    string       `json:"settings"`
	DryRun      bool         `json:"dry_run"`
	Files       []FileResult `json:"files"`
	DirsCreated []string     `json:"dirs_created,omitempty"`
	// Generated names the secrets made in this run.
	Generated []string `json:"generated_secrets,omitempty"`
}

// Changed reports whether anything was (or would be) written.
func (r *Result) Changed() bool {
	if len(r.DirsCreated) > 0 {
		return true
	}
	for _, f := range r.Files {
		if f.Change != Unchanged {
			return true
		}
	}
	return false
}

// Options tune a run.
type Options struct {
	DryRun bool
	// Now is the clock for new certificates; time.Now when nil.
	Now func() time.Time
	// Secrets, when set, replaces the secrets file's content for this run
	// (certs generate --force uses it to install a new pair).
	Secrets *Secrets
}

// Run renders everything from validated settings and writes what changed.
// Secrets are written first, so that a run stopped half-way is finished by
// the next run with the same secrets instead of new ones.
func Run(l *settings.Loaded, opts Options) (*Result, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	p := l.Resolve()
	sec := opts.Secrets
	if sec == nil {
		var err error
		if sec, err = LoadSecrets(p.Secrets); err != nil {
			return nil, err
		}
	}
	if err := sec.Complete(&l.Settings.Registry, now()); err != nil {
		return nil, err
	}
	files, dirs, err := Render(l, sec.Effective(&l.Settings.Registry))
	if err != nil {
		return nil, err
	}
	if secretsFile, err := secretsFile(p.Secrets, sec); err != nil {
		return nil, err
	} else if secretsFile != nil {
		files = append([]File{*secretsFile}, files...)
	}

	res := &Result{Settings: l.Path, DryRun: opts.DryRun, Generated: sec.Generated}
	for _, d := range dirs {
		if _, err := os.Stat(d.Path); errors.Is(err, fs.ErrNotExist) {
			res.DirsCreated = append(res.DirsCreated, d.Path)
		}
	}
	gids := make([]int, len(files))
	for i := range files {
		var note string
		files[i], gids[i], note = resolveGroup(files[i])
		fr, err := plan(files[i], gids[i], opts.DryRun)
		if err != nil {
			return nil, err
		}
		fr.Note = joinNotes(fr.Note, note)
		res.Files = append(res.Files, fr)
	}
	if opts.DryRun {
		return res, nil
	}

	unlock, err := settings.Lock(l)
	if err != nil {
		return nil, err
	}
	defer unlock()
	for _, d := range dirs {
		if !slices.Contains(res.DirsCreated, d.Path) {
			continue // an existing folder keeps the mode its admin gave it
		}
		if err := os.MkdirAll(d.Path, d.Mode); err != nil {
			return nil, fmt.Errorf("create folder: %w", err)
		}
		// MkdirAll applies the umask; the mode asked for is the one meant.
		if err := os.Chmod(d.Path, d.Mode); err != nil {
			return nil, fmt.Errorf("create folder: %w", err)
		}
	}
	for i, f := range files {
		if err := fsutil.RemoveStaleTemps(f.Path); err != nil {
			return res, err
		}
		if res.Files[i].Change == Unchanged {
			continue
		}
		if err := fsutil.WriteFileAtomicGroup(f.Path, f.Content, f.Mode, gids[i]); err != nil {
			return res, err
		}
	}
	return res, nil
}

// secretsFile is the secrets file to write: the existing bytes when
// nothing was generated (so the file is never reformatted needlessly),
// nil when there is nothing to keep.
func secretsFile(path string, sec *Secrets) (*File, error) {
	content, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if len(sec.Generated) > 0 || (err == nil && content == nil) {
		if content, err = sec.Marshal(); err != nil {
			return nil, err
		}
	}
	if content == nil {
		return nil, nil
	}
	return &File{Path: path, Content: content, Mode: 0o600, Secret: true, Role: "secrets"}, nil
}

// plan compares f with what is on disk: content, mode and, when gid is
// not -1, the group.
func plan(f File, gid int, withDiff bool) (FileResult, error) {
	fr := FileResult{Path: f.Path, Role: f.Role, Mode: f.Mode, Group: f.Group}
	old, err := os.ReadFile(f.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fr.Change = Created
	case err != nil:
		return fr, err
	case !bytes.Equal(old, f.Content):
		fr.Change = Updated
	default:
		fr.Change = Unchanged
	}
	if st, err := os.Stat(f.Path); err == nil && fr.Change != Created {
		if st.Mode().Perm() != f.Mode {
			fr.Note = fmt.Sprintf("mode %04o -> %04o", st.Mode().Perm(), f.Mode)
		}
		if old := int(st.Sys().(*syscall.Stat_t).Gid); gid >= 0 && old != gid {
			fr.Note = joinNotes(fr.Note, fmt.Sprintf("group %s -> %s", groupName(old), f.Group))
		}
		if fr.Note != "" && fr.Change == Unchanged {
			fr.Change = Updated
		}
	}
	if withDiff && fr.Change != Unchanged && !bytes.Equal(old, f.Content) {
		if fr.Diff, err = redactedDiff(f, old, fr.Change == Created); err != nil {
			return fr, err
		}
	}
	return fr, nil
}

func joinNotes(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + ", " + b
}

func unifiedDiff(path, old, cur string, created bool) string {
	from := "a" + path
	if created {
		from = "/dev/null"
	}
	d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: splitLines(old), B: splitLines(cur),
		FromFile: from, ToFile: "b" + path, Context: 3,
	})
	return d
}

// splitLines gives no lines for empty text, so a new file's hunk reads
// "@@ -0,0 +1,N @@" and applies with patch or git apply.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return difflib.SplitLines(s)
}
