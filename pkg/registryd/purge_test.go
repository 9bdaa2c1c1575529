package registryd

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/internal/testtools"
	"regctl/pkg/storage"
)

// ageUpload makes an upload look started age ago: in its startedat, and
// in its folder's modification time.
func ageUpload(t *testing.T, e *blobEnv, repo, id string, age time.Duration) {
	t.Helper()
	then := time.Now().Add(-age).UTC()
	if err := e.drv.PutContent(context.Background(), storage.UploadStartedAtPath(repo, id), []byte(then.Format(time.RFC3339))); err != nil {
		t.Fatal(err)
	}
	setFolderTime(t, e, storage.UploadDir(repo, id), then)
}

func setFolderTime(t *testing.T, e *blobEnv, p string, when time.Time) {
	t.Helper()
	if err := os.Chtimes(filepath.Join(e.root, filepath.FromSlash(p)), when, when); err != nil {
		t.Fatal(err)
	}
}

func TestPurgeUploads(t *testing.T) {
	logs := &testtools.SyncBuffer{}
	e := newBlobEnv(t, func(o *Options) { o.Log = slog.New(slog.NewTextHandler(logs, nil)) })
	week := 7 * 24 * time.Hour

	// A blob, so that the walk passes _layers (and must not touch it).
	d := e.push("group/app", []byte("layer"))

	fresh := uploadID(e.startUpload("group/app"))
	old := uploadID(e.startUpload("group/app"))
	ageUpload(t, e, "group/app", old, week+time.Hour)
	oldNested := uploadID(e.startUpload("group/sub/deep/image"))
	ageUpload(t, e, "group/sub/deep/image", oldNested, 30*24*time.Hour)
	// startedat gone: the folder's time decides, old here ...
	noStart := uploadID(e.startUpload("other"))
	os.Remove(filepath.Join(e.root, filepath.FromSlash(storage.UploadStartedAtPath("other", noStart))))
	setFolderTime(t, e, storage.UploadDir("other", noStart), time.Now().Add(-week-time.Minute))
	// ... and fresh here, with a corrupt startedat.
	corrupt := uploadID(e.startUpload("other"))
	if err := e.drv.PutContent(context.Background(), storage.UploadStartedAtPath("other", corrupt), []byte("yesterday-ish")); err != nil {
		t.Fatal(err)
	}

	type up struct{ repo, id string }
	purgedWant := []up{{"group/app", old}, {"group/sub/deep/image", oldNested}, {"other", noStart}}
	keptWant := []up{{"group/app", fresh}, {"other", corrupt}}

	n, err := e.srv.PurgeUploads(context.Background(), week, true)
	if err != nil || n != 3 {
		t.Fatalf("dry run: %d, %v; want 3", n, err)
	}
	for _, u := range append(purgedWant, keptWant...) {
		if !e.exists(storage.UploadDir(u.repo, u.id)) {
			t.Errorf("dry run removed %s %s", u.repo, u.id)
		}
	}

	n, err = e.srv.PurgeUploads(context.Background(), week, false)
	if err != nil || n != 3 {
		t.Fatalf("purge: %d, %v; want 3", n, err)
	}
	for _, u := range purgedWant {
		if e.exists(storage.UploadDir(u.repo, u.id)) {
			t.Errorf("old upload %s %s kept", u.repo, u.id)
		}
		if !strings.Contains(logs.String(), u.id) {
			t.Errorf("purge of %s not logged", u.id)
		}
	}
	for _, u := range keptWant {
		if !e.exists(storage.UploadDir(u.repo, u.id)) {
			t.Errorf("fresh upload %s %s removed", u.repo, u.id)
		}
	}
	if strings.Contains(logs.String(), fresh) {
		t.Errorf("the fresh upload was named in the log")
	}
	// The fresh upload still works, and so does the blob.
	e.expect(e.do("GET", "/v2/group/app/blobs/uploads/"+fresh, nil), 204, "")
	e.expect(e.do("GET", "/v2/group/app/blobs/"+d.String(), nil), 200, "")

	if n, err := e.srv.PurgeUploads(context.Background(), week, false); err != nil || n != 0 {
		t.Errorf("second purge: %d, %v", n, err)
	}
}

func TestPurgeUploadsEmptyRoot(t *testing.T) {
	e := newBlobEnv(t, nil)
	if n, err := e.srv.PurgeUploads(context.Background(), time.Hour, false); err != nil || n != 0 {
		t.Errorf("empty root: %d, %v", n, err)
	}
}

func TestRunUploadPurger(t *testing.T) {
	e := newBlobEnv(t, nil)
	old := uploadID(e.startUpload("r"))
	ageUpload(t, e, "r", old, 2*time.Hour)
	fresh := uploadID(e.startUpload("r"))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		e.srv.RunUploadPurger(ctx, time.Hour, 20*time.Millisecond, false)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.exists(storage.UploadDir("r", old)) {
		if time.Now().After(deadline) {
			t.Fatal("the purger did not remove the old upload")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// An upload that grows old while the purger runs goes on a later round.
	ageUpload(t, e, "r", fresh, 2*time.Hour)
	for e.exists(storage.UploadDir("r", fresh)) {
		if time.Now().After(deadline) {
			t.Fatal("the purger did not run again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunUploadPurger did not return after cancel")
	}

	// Uploads pushed after a purge still complete.
	loc := e.startUpload("r")
	e.expect(e.do("PUT", loc+"?digest="+digest.FromBytes(nil).String(), nil), 201, "")
}

// Symbolic links planted in the root are reported and never followed:
// the old uploads behind them, outside the root, stay, and so do the
// links; an old upload inside is purged as usual.
func TestPurgeUploadsNeverFollowsSymlinks(t *testing.T) {
	logs := &testtools.SyncBuffer{}
	e := newBlobEnv(t, func(o *Options) { o.Log = slog.New(slog.NewTextHandler(logs, nil)) })
	s := testtools.PlantSymlinks(t, e.root)
	week := 7 * 24 * time.Hour
	old := uploadID(e.startUpload("group/app"))
	ageUpload(t, e, "group/app", old, week+time.Hour)
	// An upload folder that is itself a link.
	linked := filepath.Join(e.root, filepath.FromSlash(storage.UploadDir("group/app", "0a0a0a0a-0000-4000-8000-00000000000f")))
	if err := os.Symlink(filepath.Join(s.Outside, "uploads", testtools.SymlinkUploadGood), linked); err != nil {
		t.Fatal(err)
	}

	n, err := e.srv.PurgeUploads(context.Background(), week, false)
	if err != nil || n != 1 {
		t.Errorf("purge: %d, %v; want the one old upload inside", n, err)
	}
	if e.exists(storage.UploadDir("group/app", old)) {
		t.Error("the old upload inside the root was kept")
	}
	s.CheckOutside(t)
	s.CheckLinks(t)
	if _, err := os.Lstat(linked); err != nil {
		t.Errorf("the linked upload folder: %v", err)
	}
	for _, p := range []string{"repositories/evil", "good/app/_uploads", "0a0a0a0a-0000-4000-8000-00000000000f"} {
		if !strings.Contains(logs.String(), p) {
			t.Errorf("link %s not reported:\n%s", p, logs)
		}
	}
}
