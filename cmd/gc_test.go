package cmd

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"regctl/internal/testtools"
)

// gcRoot is a storage root holding one blob nothing references and one
// empty manifest revision link (which CNCF Distribution aborts on), and
// its config.
func gcRoot(t *testing.T) (config, blobDir, digest string) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	sum := sha256.Sum256([]byte("an orphan layer"))
	h := hex.EncodeToString(sum[:])
	v2 := filepath.Join(root, "docker", "registry", "v2")
	blobDir = filepath.Join(v2, "blobs", "sha256", h[:2], h)
	writeFile(t, filepath.Join(blobDir, "data"), "an orphan layer", 0o644)
	writeFile(t, filepath.Join(v2, "repositories", "team", "app", "_manifests", "revisions", "sha256", strings.Repeat("ab", 32), "link"), "", 0o644)
	config = filepath.Join(dir, "config.yml")
	writeFile(t, config, "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "+root+"\n", 0o644)
	return config, blobDir, "sha256:" + h
}

// A dry run with -v lists what it would delete, reports the corrupt
// link and goes on, and deletes nothing.
func TestGCDryRunVerbose(t *testing.T) {
	config, blobDir, d := gcRoot(t)
	r := mustCode(t, 0, "registry-garbage-collect", "-d", "-v", config)
	for _, want := range []string{
		"would delete blob " + d,
		"registry-garbage-collect (dry run: nothing deleted)",
		"would be deleted:", "0 manifests, 1 blobs",
		"problem", "corrupt-link",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r)
		}
	}
	if _, err := os.Stat(blobDir); err != nil {
		t.Errorf("the dry run deleted the blob: %v", err)
	}
}

// A real run with -o json: the deletions and the report as data, and
// the blob gone; no daemon runs, so none was switched to read-only.
func TestGCJSON(t *testing.T) {
	config, blobDir, d := gcRoot(t)
	r := mustCode(t, 0, "-o", "json", "registry-garbage-collect", config)
	var res struct {
		Report struct {
			BlobsDeleted int
			BytesFreed   int64
			Problems     []struct{ Kind string }
		} `json:"report"`
		Deletions []struct{ Kind, Digest string } `json:"deletions"`
		Daemons   *int                            `json:"daemons_read_only"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r)
	}
	if res.Report.BlobsDeleted != 1 || res.Report.BytesFreed != int64(len("an orphan layer")) ||
		len(res.Deletions) != 1 || res.Deletions[0].Kind != "blob" || res.Deletions[0].Digest != d {
		t.Errorf("want the orphan blob deleted, got %s", r.stdout)
	}
	if len(res.Report.Problems) != 1 || res.Report.Problems[0].Kind != "corrupt-link" {
		t.Errorf("want the empty link reported, got %+v", res.Report.Problems)
	}
	if res.Daemons == nil || *res.Daemons != 0 {
		t.Errorf("daemons_read_only = %v, want 0", res.Daemons)
	}
	if _, err := os.Stat(blobDir); !os.IsNotExist(err) {
		t.Errorf("the blob is still there: %v", err)
	}
}

// In text mode, with no regctl daemon on the storage, the command says
// that other writers must be read-only.
func TestGCWarnsAboutOtherWriters(t *testing.T) {
	config, _, _ := gcRoot(t)
	r := mustCode(t, 0, "registry-garbage-collect", config)
	if !strings.Contains(r.stdout, "other writers") || !strings.Contains(r.stdout, "deleted:") {
		t.Errorf("want the other-writers warning and the summary:\n%s", r)
	}
}

// Symbolic links planted at every depth of the storage root are reported
// and never followed: GC -m deletes nothing outside the root, and the
// links stay. Inside the root it still collects (the manifest blob only
// the outside repository names is garbage here).
func TestGCNeverFollowsSymlinks(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	s := testtools.PlantSymlinks(t, root)
	r := mustCode(t, 0, "-o", "json", "registry-garbage-collect", "-m", storageConfig(t, root))
	var res struct {
		Report struct {
			BlobsDeleted int
			Symlinks     int
			Problems     []struct{ Kind, Path string }
		} `json:"report"`
		Deletions []struct{ Kind, Digest string } `json:"deletions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r)
	}
	s.CheckOutside(t)
	s.CheckLinks(t)
	var links []string
	for _, p := range res.Report.Problems {
		if p.Kind == "symlink" {
			links = append(links, p.Path)
		}
	}
	// GC meets the links on the paths it scans; _uploads is left to
	// upload purging.
	want := []string{s.Links[0], s.Links[1], s.Links[2]}
	if !slices.Equal(links, want) || res.Report.Symlinks != len(want) {
		t.Errorf("symlinks reported: %d, %v; want %v", res.Report.Symlinks, links, want)
	}
	if res.Report.BlobsDeleted != 1 || len(res.Deletions) == 0 || res.Deletions[len(res.Deletions)-1].Digest != s.Manifest {
		t.Errorf("want the unreferenced manifest blob deleted: %s", r.stdout)
	}
	mustContain(t, "log", r.stderr, "symlink")
	r = mustCode(t, 0, "registry-garbage-collect", "-m", "-d", storageConfig(t, root))
	mustContain(t, "text", r.stdout, "symlinks:", "3, never followed", "repositories/evil")
}

// Each problem is shown once across stdout and stderr: in the text
// report, or in the JSON with only a count of it on stderr (which is
// what cron mails when the JSON goes to a file). The collector does not
// log it as well.
func TestGCReportsProblemsOnce(t *testing.T) {
	config, _, _ := gcRoot(t)
	link := "revisions/sha256/" + strings.Repeat("ab", 32) + "/link"
	for _, args := range [][]string{
		{"registry-garbage-collect", "-d", config},
		{"registry-garbage-collect", "-d", "-v", config},
		{"registry-garbage-collect", config},
		{"-o", "json", "registry-garbage-collect", "-d", config},
		{"-o", "json", "registry-garbage-collect", config},
		{"registry-usage", config},
		{"-o", "json", "registry-usage", config},
	} {
		t.Run(strings.Join(args[:len(args)-1], " "), func(t *testing.T) {
			r := mustCode(t, 0, args...)
			if n := strings.Count(r.stdout+r.stderr, link); n != 1 {
				t.Errorf("the corrupt link is named %d times, want once:\n%s", n, r)
			}
			if args[0] != "-o" {
				mustContain(t, "stdout", r.stdout, "corrupt-link: ")
				return
			}
			mustContain(t, "stderr", r.stderr, "warning:", "1 problem(s) (1 corrupt-link)", "the JSON output lists them")
		})
	}
}
