package storage_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"regctl/internal/testtools"
	"regctl/pkg/storage"
)

// testCreateExclusive is the contract of ExclusiveCreator, run on each
// driver: one create wins, the others see ErrExists, and the winner's
// content is what everyone reads.
func testCreateExclusive(t *testing.T, d storage.Driver) {
	ec, ok := d.(storage.ExclusiveCreator)
	if !ok {
		t.Fatalf("%s driver is no ExclusiveCreator", d.Name())
	}
	ctx := t.Context()
	const p = "/docker/registry/v2/_regctl/test/lock.json"

	t.Run("create then exists", func(t *testing.T) {
		if err := ec.CreateExclusive(ctx, p, []byte("first")); err != nil {
			t.Fatal(err)
		}
		err := ec.CreateExclusive(ctx, p, []byte("second"))
		if !errors.Is(err, storage.ErrExists) {
			t.Fatalf("second create: %v, want ErrExists", err)
		}
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name the path", err)
		}
		if b, err := d.GetContent(ctx, p); err != nil || string(b) != "first" {
			t.Fatalf("content = %q, %v; want the first create's", b, err)
		}
		// Gone again, the path can be created anew.
		if err := d.Delete(ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := ec.CreateExclusive(ctx, p, []byte("third")); err != nil {
			t.Fatalf("create after delete: %v", err)
		}
		if b, _ := d.GetContent(ctx, p); string(b) != "third" {
			t.Fatalf("content = %q, want third", b)
		}
		if err := d.Delete(ctx, p); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("empty content", func(t *testing.T) {
		const e = "/docker/registry/v2/_regctl/test/empty"
		if err := ec.CreateExclusive(ctx, e, nil); err != nil {
			t.Fatal(err)
		}
		if err := ec.CreateExclusive(ctx, e, nil); !errors.Is(err, storage.ErrExists) {
			t.Fatalf("second create: %v, want ErrExists", err)
		}
		if fi, err := d.Stat(ctx, e); err != nil || fi.Size != 0 {
			t.Fatalf("Stat = %+v, %v", fi, err)
		}
	})

	t.Run("invalid paths", func(t *testing.T) {
		for _, bad := range []string{"/", "relative", "/a/../b", "/a/"} {
			if err := ec.CreateExclusive(ctx, bad, []byte("x")); err == nil || errors.Is(err, storage.ErrExists) {
				t.Errorf("CreateExclusive(%q) = %v, want a path error", bad, err)
			}
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		for round := range 10 {
			path := fmt.Sprintf("/docker/registry/v2/_regctl/race/%d", round)
			const n = 8
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() { errs[i] = ec.CreateExclusive(ctx, path, []byte(fmt.Sprintf("writer %d", i))) })
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("round %d: writers %d and %d both created %s", round, winner, i, path)
				case err == nil:
					winner = i
				case !errors.Is(err, storage.ErrExists):
					t.Fatalf("round %d: writer %d: %v", round, i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: no writer created %s", round, path)
			}
			if b, err := d.GetContent(ctx, path); err != nil || string(b) != fmt.Sprintf("writer %d", winner) {
				t.Fatalf("round %d: content %q, %v; want writer %d's", round, b, err, winner)
			}
		}
	})
}

func TestFilesystemCreateExclusive(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	testCreateExclusive(t, d)

	// Nothing of the temporary files is left, and what was created is
	// readable by another registry user.
	var temps []string
	filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(e.Name(), ".regctl-tmp-") {
			temps = append(temps, p)
		}
		return nil
	})
	if len(temps) > 0 {
		t.Errorf("temporary files left: %q", temps)
	}
	fi, err := os.Stat(filepath.Join(root, "docker/registry/v2/_regctl/race/0"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}

	// A folder where the file should be counts as taken.
	if err := os.MkdirAll(filepath.Join(root, "dir/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateExclusive(t.Context(), "/dir", []byte("x")); !errors.Is(err, storage.ErrExists) {
		t.Errorf("create over a folder: %v, want ErrExists", err)
	}
}

// TestS3CreateExclusive checks that versitygw honours If-None-Match: *
// on PutObject; if it ignored it, the second create would succeed.
func TestS3CreateExclusive(t *testing.T) {
	t.Parallel()
	g := testtools.NewVersityGW(t)
	t.Run("root", func(t *testing.T) { testCreateExclusive(t, newS3(t, g, g.Bucket(t), nil)) })
	t.Run("rootdirectory", func(t *testing.T) {
		testCreateExclusive(t, newS3(t, g, g.Bucket(t), map[string]any{"rootdirectory": "/registry"}))
	})
}
