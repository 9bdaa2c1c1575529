// Command tagsgen writes a registry with many tags straight into a
// filesystem storage root, in Distribution's layout, for bench/cleanup.sh:
// -repos repositories of -tags tags each, every tag its own image (an
// OCI manifest, a config with its own "created" date, one layer shared
// within the repository). Dates spread over the last 400 days.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

func main() {
	root := flag.String("root", "", "storage root directory (rootdirectory)")
	repos := flag.Int("repos", 20, "repositories")
	tags := flag.Int("tags", 500, "tags per repository")
	flag.Parse()
	if *root == "" {
		log.Fatal("-root is required")
	}
	w := writer{root: *root}
	now := time.Now().UTC()
	for r := range *repos {
		repo := fmt.Sprintf("bench/app%02d", r)
		layer := w.blob(fmt.Appendf(nil, "layer of %s %s", repo, make([]byte, 512)))
		w.link(storage.LayerLinkPath(repo, layer.d), layer.d)
		for i := range *tags {
			created := now.Add(-time.Duration((i*7919+r*104729)%(400*24)) * time.Hour)
			sum := sha256.Sum256(fmt.Appendf(nil, "%s %d", repo, i))
			config := w.blob(fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","created":%q,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}`,
				created.Format(time.RFC3339), hex.EncodeToString(sum[:])))
			w.link(storage.LayerLinkPath(repo, config.d), config.d)
			m := w.blob(fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
				`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
				`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
				config.d, config.size, layer.d, layer.size))
			w.link(storage.ManifestRevisionLinkPath(repo, m.d), m.d)
			tag := fmt.Sprintf("v%d", i)
			w.link(storage.TagIndexEntryLinkPath(repo, tag, m.d), m.d)
			w.link(storage.TagCurrentLinkPath(repo, tag), m.d)
		}
	}
	fmt.Printf("%d repositories, %d tags, %d files in %s\n", *repos, *repos**tags, w.files, *root)
}

type writer struct {
	root  string
	files int
}

type blob struct {
	d    digest.Digest
	size int
}

func (w *writer) put(p string, b []byte) {
	full := filepath.Join(w.root, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(full, b, 0o644); err != nil {
		log.Fatal(err)
	}
	w.files++
}

func (w *writer) blob(b []byte) blob {
	d := digest.FromBytes(b)
	w.put(storage.BlobDataPath(d), b)
	return blob{d, len(b)}
}

func (w *writer) link(p string, d digest.Digest) { w.put(p, []byte(d)) }
