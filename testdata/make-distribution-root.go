//go:build ignore

// make-distribution-root remakes testdata/distribution-root: a tiny
// storage root written by CNCF Distribution v3.1.2, which the integration
// tests serve with `regctl serve` to check that regctl reads Distribution's
// layout as Distribution wrote it.
//
// Run it from the repository root, with the pinned tools installed
// (`make tools`):
//
//	go run testdata/make-distribution-root.go
//	go run testdata/make-distribution-root.go -registry /path/to/registry
//
// It starts Distribution on a free loopback port with an empty root, pushes
// with go-containerregistry:
//
//   - interop/app:v1      an OCI image with two small layers (A)
//   - interop/app:stable  A, then re-tagged to B, so the tag has two index
//     entries (_manifests/tags/stable/index/sha256/{A,B})
//   - interop/app:v2      a Docker schema2 image (B) sharing A's base layer
//   - interop/multi:1.0   an OCI index of two platforms (linux/amd64,
//     linux/arm64)
//
// deletes nothing, stops Distribution, and replaces
// testdata/distribution-root/docker with the root it wrote, plus
// testdata/distribution-root/expected.json with the tags, manifests and
// blobs the tests expect. Every byte pushed is fixed (tar headers, gzip
// headers, config dates), so a rerun writes the same digests.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Expected is testdata/distribution-root/expected.json.
type Expected struct {
	GeneratedBy  string                   `json:"generated_by"`
	Catalog      []string                 `json:"catalog"`
	Repositories map[string]*ExpectedRepo `json:"repositories"`
}

// ExpectedRepo is what one repository holds.
type ExpectedRepo struct {
	// Tags maps each tag to the manifest digest it points at now.
	Tags map[string]string `json:"tags"`
	// TagIndex lists, per tag, every revision the tag ever pointed at
	// (the tag's index/ entries), sorted.
	TagIndex map[string][]string `json:"tag_index"`
	// Manifests maps each manifest revision to its media type.
	Manifests map[string]string `json:"manifests"`
	// Blobs are the configs and layers linked into the repository, sorted.
	Blobs []string `json:"blobs"`
}

var fixedTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func main() {
	registry := flag.String("registry", ".tools/bin/registry", "CNCF Distribution v3.1.2 registry binary")
	out := flag.String("out", "testdata/distribution-root", "fixture folder to replace")
	flag.Parse()
	if err := run(*registry, *out); err != nil {
		log.Fatal(err)
	}
}

func run(registry, out string) error {
	version, err := exec.Command(registry, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %w", registry, err)
	}
	if !strings.Contains(string(version), "v3.1.2") {
		return fmt.Errorf("want CNCF Distribution v3.1.2, got %s", version)
	}
	work, err := os.MkdirTemp("", "distribution-root-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "root")
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	config := filepath.Join(work, "config.yml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
`, root, addr)), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(registry, "serve", config)
	var logs bytes.Buffer // shown only when something fails
	cmd.Stdout, cmd.Stderr = &logs, &logs
	// REGISTRY_* variables would override the config.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	if err := waitDial(addr, 20*time.Second); err != nil {
		return err
	}

	exp, err := push(addr)
	if err != nil {
		return fmt.Errorf("%w\nregistry output:\n%s", err, logs.Bytes())
	}
	fields := strings.Fields(string(version))
	exp.GeneratedBy = "CNCF Distribution " + fields[len(fields)-1] + " (registry serve), pushed by go-containerregistry; remake with: go run testdata/make-distribution-root.go"

	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()

	if err := checkLayout(root, exp); err != nil {
		return err
	}
	if err := removeEmptyDirs(root); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(out, "docker")); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := os.CopyFS(out, os.DirFS(root)); err != nil {
		return err
	}
	b, err := json.MarshalIndent(exp, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "expected.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	log.Printf("wrote %s", out)
	return nil
}

// push writes the fixture's images and returns what it pushed.
func push(addr string) (*Expected, error) {
	base, err := layer(map[string]string{"etc/os-release": "NAME=regctl-fixture\nVERSION=1\n"})
	if err != nil {
		return nil, err
	}
	appV1, err := layer(map[string]string{"app/hello.txt": "hello from v1\n"})
	if err != nil {
		return nil, err
	}
	appV2, err := layer(map[string]string{"app/hello.txt": "hello from v2\n"})
	if err != nil {
		return nil, err
	}

	ociBase := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	imgA, err := image(ociBase, "amd64", []string{"/app/hello-v1"}, base, appV1)
	if err != nil {
		return nil, err
	}
	imgB, err := image(empty.Image, "amd64", []string{"/app/hello-v2"}, base, appV2) // Docker schema2
	if err != nil {
		return nil, err
	}

	var children []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		l, err := layer(map[string]string{"app/arch.txt": arch + "\n"})
		if err != nil {
			return nil, err
		}
		img, err := image(ociBase, arch, []string{"/app/arch"}, base, l)
		if err != nil {
			return nil, err
		}
		children = append(children, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: arch},
		}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), children...)

	ref := func(s string) name.Reference {
		r, err := name.ParseReference(addr+"/"+s, name.Insecure)
		if err != nil {
			panic(err)
		}
		return r
	}
	tag := func(s string) name.Tag { return ref(s).(name.Tag) }
	if err := remote.Write(ref("interop/app:v1"), imgA); err != nil {
		return nil, fmt.Errorf("push v1: %w", err)
	}
	if err := remote.Tag(tag("interop/app:stable"), imgA); err != nil {
		return nil, fmt.Errorf("tag stable: %w", err)
	}
	if err := remote.Write(ref("interop/app:v2"), imgB); err != nil {
		return nil, fmt.Errorf("push v2: %w", err)
	}
	if err := remote.Tag(tag("interop/app:stable"), imgB); err != nil {
		return nil, fmt.Errorf("re-tag stable: %w", err)
	}
	if err := remote.WriteIndex(ref("interop/multi:1.0"), idx); err != nil {
		return nil, fmt.Errorf("push index: %w", err)
	}

	app := newRepo()
	dA, err := app.addImage(imgA)
	if err != nil {
		return nil, err
	}
	dB, err := app.addImage(imgB)
	if err != nil {
		return nil, err
	}
	app.Tags = map[string]string{"v1": dA, "v2": dB, "stable": dB}
	app.TagIndex = map[string][]string{"v1": {dA}, "v2": {dB}, "stable": sorted(dA, dB)}

	multi := newRepo()
	dIdx, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	multi.Manifests[dIdx.String()] = string(types.OCIImageIndex)
	for _, c := range children {
		if _, err := multi.addImage(c.Add.(v1.Image)); err != nil {
			return nil, err
		}
	}
	multi.Tags = map[string]string{"1.0": dIdx.String()}
	multi.TagIndex = map[string][]string{"1.0": {dIdx.String()}}

	for _, r := range []*ExpectedRepo{app, multi} {
		slices.Sort(r.Blobs)
		r.Blobs = slices.Compact(r.Blobs)
	}
	return &Expected{
		Catalog:      []string{"interop/app", "interop/multi"},
		Repositories: map[string]*ExpectedRepo{"interop/app": app, "interop/multi": multi},
	}, nil
}

func newRepo() *ExpectedRepo {
	return &ExpectedRepo{Manifests: map[string]string{}}
}

// addImage records an image's manifest, config and layers.
func (r *ExpectedRepo) addImage(img v1.Image) (string, error) {
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	mt, err := img.MediaType()
	if err != nil {
		return "", err
	}
	r.Manifests[d.String()] = string(mt)
	cd, err := img.ConfigName()
	if err != nil {
		return "", err
	}
	r.Blobs = append(r.Blobs, cd.String())
	layers, err := img.Layers()
	if err != nil {
		return "", err
	}
	for _, l := range layers {
		ld, err := l.Digest()
		if err != nil {
			return "", err
		}
		r.Blobs = append(r.Blobs, ld.String())
	}
	return d.String(), nil
}

// image builds a small image on top of b with fixed dates.
func image(b v1.Image, arch string, cmd []string, layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(b, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: fixedTime}
	cf.Config.Cmd = cmd
	cf.History = nil
	for range layers {
		cf.History = append(cf.History, v1.History{Created: v1.Time{Time: fixedTime}, CreatedBy: "make-distribution-root"})
	}
	return mutate.ConfigFile(img, cf)
}

// layer is a gzipped tar of files with fixed headers.
func layer(files map[string]string) (v1.Layer, error) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: fixedTime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, files[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	var gb bytes.Buffer
	gw, err := gzip.NewWriterLevel(&gb, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := gw.Write(tb.Bytes()); err != nil {
		return nil, err
	}
	if err := gw.Close(); err != nil {
		return nil, err
	}
	gz := gb.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// checkLayout confirms Distribution wrote what the tests will rely on.
func checkLayout(root string, exp *Expected) error {
	v2 := filepath.Join(root, "docker", "registry", "v2")
	for repo, r := range exp.Repositories {
		for tag, revs := range r.TagIndex {
			dir := filepath.Join(v2, "repositories", repo, "_manifests", "tags", tag, "index", "sha256")
			ents, err := os.ReadDir(dir)
			if err != nil {
				return err
			}
			var got []string
			for _, e := range ents {
				got = append(got, "sha256:"+e.Name())
			}
			if !slices.Equal(got, revs) {
				return fmt.Errorf("%s:%s index entries %v, want %v", repo, tag, got, revs)
			}
			cur, err := os.ReadFile(filepath.Join(v2, "repositories", repo, "_manifests", "tags", tag, "current", "link"))
			if err != nil {
				return err
			}
			if string(cur) != r.Tags[tag] {
				return fmt.Errorf("%s:%s current %q, want %q", repo, tag, cur, r.Tags[tag])
			}
		}
	}
	var size int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		size += fi.Size()
		return err
	})
	if err != nil {
		return err
	}
	if size > 100<<10 {
		return fmt.Errorf("the root holds %d bytes; keep the fixture under 100 KiB", size)
	}
	return nil
}

// removeEmptyDirs drops the empty folders (_uploads) git would not keep,
// so the fixture on disk is the fixture in git.
func removeEmptyDirs(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
			return err
		}
	}
	return nil
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitDial(addr string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for ctx.Err() == nil {
		if c, err := net.DialTimeout("tcp", addr, 250*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("registry did not listen on %s within %v", addr, limit)
}
