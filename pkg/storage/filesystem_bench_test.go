package storage_test

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

// The filesystem driver's hot paths, on paths as deep as the registry's:
// a manifest GET reads link files, a blob GET opens the data file, GC
// lists folders, reads links and stats data files, and migrate and
// upload purging walk the tree.

const benchRepo = "group/project"

func benchDigest(i int) digest.Digest { return digest.FromString(fmt.Sprint("bench ", i)) }

// benchFS is a driver holding n revision links of benchRepo and n blobs
// of 4 KiB.
func benchFS(b *testing.B, n int) *storage.Filesystem {
	b.Helper()
	d, _ := newFS(b)
	ctx := context.Background()
	blob := make([]byte, 4096)
	for i := range n {
		dg := benchDigest(i)
		if err := d.PutContent(ctx, storage.ManifestRevisionLinkPath(benchRepo, dg), []byte(dg)); err != nil {
			b.Fatal(err)
		}
		if err := d.PutContent(ctx, storage.BlobDataPath(dg), blob); err != nil {
			b.Fatal(err)
		}
	}
	return d
}

func BenchmarkFilesystemGetContent(b *testing.B) {
	d := benchFS(b, 1)
	p := storage.ManifestRevisionLinkPath(benchRepo, benchDigest(0))
	for b.Loop() {
		if _, err := d.GetContent(b.Context(), p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFilesystemStat(b *testing.B) {
	d := benchFS(b, 1)
	p := storage.BlobDataPath(benchDigest(0))
	for b.Loop() {
		if _, err := d.Stat(b.Context(), p); err != nil {
			b.Fatal(err)
		}
	}
}

// A blob GET: open, read it all, close.
func BenchmarkFilesystemOpen(b *testing.B) {
	d := benchFS(b, 1)
	p := storage.BlobDataPath(benchDigest(0))
	for b.Loop() {
		f, _, err := d.Open(b.Context(), p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, f); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

func BenchmarkFilesystemList(b *testing.B) {
	d := benchFS(b, 256)
	p := storage.ManifestRevisionsDir(benchRepo) + "/sha256"
	for b.Loop() {
		if l, err := d.List(b.Context(), p); err != nil || len(l) != 256 {
			b.Fatal(len(l), err)
		}
	}
}

// Walk over 2,000 links and 2,000 blobs: about 12,000 entries.
func BenchmarkFilesystemWalk(b *testing.B) {
	d := benchFS(b, 2000)
	for b.Loop() {
		n := 0
		err := d.Walk(b.Context(), storage.Root, func(storage.FileInfo) error {
			n++
			return nil
		})
		if err != nil || n < 4000 {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkFilesystemPutContent(b *testing.B) {
	d := benchFS(b, 0)
	dg := benchDigest(0)
	p := storage.TagCurrentLinkPath(benchRepo, "latest")
	for b.Loop() {
		if err := d.PutContent(b.Context(), p, []byte(dg)); err != nil {
			b.Fatal(err)
		}
	}
}

// DeleteUnits of revision folders, as GC -m deletes them; each round
// deletes 1,000 units.
func BenchmarkFilesystemDeleteUnits(b *testing.B) {
	const n = 1000
	d, _ := newFS(b)
	ctx := context.Background()
	units := make([]storage.Unit, n)
	for i := range units {
		dg := benchDigest(i)
		link := storage.ManifestRevisionLinkPath(benchRepo, dg)
		units[i] = storage.Unit{Path: storage.ManifestRevisionDir(benchRepo, dg), Files: []string{link}}
	}
	for b.Loop() {
		b.StopTimer()
		for _, u := range units {
			if err := d.PutContent(ctx, u.Files[0], []byte("x")); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if err := d.DeleteUnits(ctx, units); err != nil {
			b.Fatal(err)
		}
	}
}
