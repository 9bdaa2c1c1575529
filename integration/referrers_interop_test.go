package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"regctl/internal/testtools"
)

// The tests in this file run real referrers clients, oras and cosign,
// against regctl serve and CNCF Distribution v3.1.2 taking turns on one
// storage root. Distribution has no referrers API, so its clients keep
// the referrers tag schema's fallback index (a tag sha256-<hex of the
// subject>); regctl lists that index beside its own and, with
// regctl.referrers.fallbacktags, keeps it up to date for Distribution.

// sharedRoot is a storage root that regctl serve and CNCF Distribution
// serve in turn, never both at once, each on a fresh port.
type sharedRoot struct {
	t      *testing.T
	dir    string
	cfg    serveCfg
	server *testtools.Process
}

func newSharedRoot(t *testing.T, fallbackTags bool) *sharedRoot {
	t.Helper()
	testtools.Tool(t, testtools.DistributionTool)
	dir := t.TempDir()
	return &sharedRoot{t: t, dir: dir, cfg: serveCfg{Root: filepath.Join(dir, "root"), FallbackTags: fallbackTags}}
}

// regctl stops the running server, starts regctl serve on the root and
// returns its address.
func (s *sharedRoot) regctl() string {
	s.t.Helper()
	path := s.config("regctl.yml")
	s.server = startServeT(s.t, path, s.cfg.Addr)
	return s.cfg.Addr
}

// distribution stops the running server, starts CNCF Distribution on the
// root and returns its address. It reads the same config as regctl:
// Distribution ignores regctl's own section.
func (s *sharedRoot) distribution() string {
	s.t.Helper()
	path := s.config("distribution.yml")
	s.server = testtools.StartDistribution(s.t, path, s.cfg.Addr)
	return s.cfg.Addr
}

// config stops the running server and writes the config for the next one,
// on a fresh port, into the file name.
func (s *sharedRoot) config(name string) string {
	s.t.Helper()
	if s.server != nil {
		closeClientConns()
		s.server.Stop()
	}
	s.cfg.Addr = testtools.FreeAddr(s.t)
	path := filepath.Join(s.dir, name)
	s.cfg.write(s.t, path)
	return path
}

// pushImage pushes a random image to ref and returns its digest.
func pushImage(t *testing.T, ref string) v1.Hash {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, ref), img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// clientEnv is the environment of oras and cosign: a home folder of
// their own (no credentials or caches of the machine) and no proxy but
// HTTPS_PROXY on a port nobody listens on, so that cosign's lookups of
// the public Sigstore services fail at once. Loopback registries are
// never proxied.
func clientEnv(t *testing.T) []string {
	t.Helper()
	home := t.TempDir()
	var env []string
	for _, kv := range cleanEnv() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasSuffix(strings.ToUpper(k), "_PROXY") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"),
		"TUF_ROOT="+filepath.Join(home, "tuf"), "HTTPS_PROXY=http://"+testtools.FreeAddr(t))
}

// runClient runs a client program to completion (at most a minute) in dir
// and returns its stdout; it fails the test when the program fails.
func runClient(t *testing.T, env []string, dir, tool string, args ...string) string {
	t.Helper()
	out, errOut, err := tryClient(t, env, dir, tool, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", tool, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// tryClient is runClient returning the error and stderr instead of
// failing the test.
func tryClient(t *testing.T, env []string, dir, tool string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testtools.Tool(t, tool), args...)
	cmd.Env, cmd.Dir = env, dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// orasReferrer is one referrer in `oras discover --format json`.
type orasReferrer struct {
	Digest       string `json:"digest"`
	ArtifactType string `json:"artifactType"`
}

// orasClient runs oras 1.3 over plain HTTP with its own home folder.
type orasClient struct {
	t   *testing.T
	env []string
	dir string // where attached files are written
}

func newOras(t *testing.T) *orasClient {
	t.Helper()
	testtools.Tool(t, "oras")
	return &orasClient{t: t, env: clientEnv(t), dir: t.TempDir()}
}

func (o *orasClient) run(args ...string) string {
	o.t.Helper()
	return runClient(o.t, o.env, o.dir, "oras", append(args, "--plain-http")...)
}

// attach attaches a file holding content to subject (a reference) with
// artifactType, and returns the referrer's digest.
func (o *orasClient) attach(subject, artifactType, content string) string {
	o.t.Helper()
	file := strings.NewReplacer("/", "_", "+", "_").Replace(artifactType) + ".txt"
	if err := os.WriteFile(filepath.Join(o.dir, file), []byte(content), 0o600); err != nil {
		o.t.Fatal(err)
	}
	out := o.run("attach", "--artifact-type", artifactType, "--format", "json", subject, file)
	var desc orasReferrer
	if err := json.Unmarshal([]byte(out), &desc); err != nil || !strings.HasPrefix(desc.Digest, "sha256:") {
		o.t.Fatalf("oras attach: output is no descriptor (%v):\n%s", err, out)
	}
	return desc.Digest
}

// discover lists subject's direct referrers, sorted by digest. extra
// flags go before the reference.
func (o *orasClient) discover(subject string, extra ...string) []orasReferrer {
	o.t.Helper()
	args := append([]string{"discover", "--format", "json", "--depth", "1"}, extra...)
	out := o.run(append(args, subject)...)
	var tree struct {
		Referrers []orasReferrer `json:"referrers"`
	}
	if err := json.Unmarshal([]byte(out), &tree); err != nil {
		o.t.Fatalf("oras discover: output is not JSON (%v):\n%s", err, out)
	}
	slices.SortFunc(tree.Referrers, func(a, b orasReferrer) int { return strings.Compare(a.Digest, b.Digest) })
	return tree.Referrers
}

// viaAPI makes oras discover use the referrers API only: without it,
// oras falls back to reading the tag itself when the API fails, which
// would hide a broken API behind the tag's contents.
var viaAPI = []string{"--distribution-spec", "v1.1-referrers-api"}

// wantReferrers fails the test unless got lists exactly the digests want
// (any order), each with the artifact type want gives it.
func wantReferrers(t *testing.T, what string, got []orasReferrer, want map[string]string) {
	t.Helper()
	ok := len(got) == len(want)
	for _, r := range got {
		if at, found := want[r.Digest]; !found || at != r.ArtifactType {
			ok = false
		}
	}
	if !ok {
		t.Errorf("%s: referrers %+v, want %v", what, got, want)
	}
}

// fallbackTagDigests lists the manifests the referrers tag schema's index
// of subject holds in repo at addr, read as a plain tag; nil when there
// is no such tag.
func fallbackTagDigests(t *testing.T, addr, repo string, subject v1.Hash) []string {
	t.Helper()
	ref := mustRef(t, addr+"/"+repo+":"+subject.Algorithm+"-"+subject.Hex)
	var te *transport.Error
	if _, err := remote.Head(ref); errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return nil
	} else if err != nil {
		t.Fatalf("fallback tag %s: %v", ref, err)
	}
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatalf("fallback tag %s: %v", ref, err)
	}
	return indexDigests(t, idx)
}

// indexDigests lists the digests of the manifests idx lists, sorted.
func indexDigests(t *testing.T, idx v1.ImageIndex) []string {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, m := range im.Manifests {
		ds = append(ds, m.Digest.String())
	}
	slices.Sort(ds)
	return ds
}

// TestReferrersFromDistributionFallback: referrers that oras attached
// through CNCF Distribution (which keeps them in the referrers tag
// schema's fallback index) are listed by regctl's referrers API, filtered
// by artifactType for oras and go-containerregistry; a referrer attached
// through regctl joins them, and one deleted through regctl leaves the
// list, while the fallback tag, which regctl does not edit by default,
// still holds what the clients wrote.
func TestReferrersFromDistributionFallback(t *testing.T) {
	root := newSharedRoot(t, false)
	oras := newOras(t)
	const sigType, sbomType, vulnType = "application/x.sig", "application/spdx+json", "application/x.vuln"

	addr := root.distribution()
	subject := pushImage(t, addr+"/sig/app:v1")
	sig := oras.attach(addr+"/sig/app:v1", sigType, "signature")
	sbom := oras.attach(addr+"/sig/app:v1", sbomType, `{"spdxVersion":"SPDX-2.3"}`)
	both := map[string]string{sig: sigType, sbom: sbomType}
	// Sanity: Distribution has no referrers API, so oras used the tag.
	wantReferrers(t, "Distribution", oras.discover(addr+"/sig/app:v1"), both)
	if got := fallbackTagDigests(t, addr, "sig/app", subject); len(got) != 2 {
		t.Fatalf("Distribution: fallback tag lists %v, want the 2 referrers", got)
	}

	addr = root.regctl()
	ref := addr + "/sig/app@" + subject.String()
	wantReferrers(t, "regctl", oras.discover(ref, viaAPI...), both)
	wantReferrers(t, "regctl, artifactType "+sigType,
		oras.discover(ref, append(viaAPI, "--artifact-type", sigType)...), map[string]string{sig: sigType})
	subjectRef := mustRef(t, ref).(name.Digest)
	filtered, err := remote.Referrers(subjectRef, remote.WithFilter("artifactType", sbomType))
	if err != nil {
		t.Fatalf("go-containerregistry Referrers: %v", err)
	}
	if im, err := filtered.IndexManifest(); err != nil || len(im.Manifests) != 1 ||
		im.Manifests[0].Digest.String() != sbom || im.Manifests[0].ArtifactType != sbomType {
		t.Errorf("go-containerregistry Referrers with artifactType %s: %+v (%v), want %s", sbomType, im, err, sbom)
	}

	// A referrer attached through regctl joins the fallback's two; oras
	// used regctl's API, so the fallback tag is untouched.
	vuln := oras.attach(ref, vulnType, "no findings")
	wantReferrers(t, "regctl after an attach", oras.discover(ref, viaAPI...),
		map[string]string{sig: sigType, sbom: sbomType, vuln: vulnType})
	if got := fallbackTagDigests(t, addr, "sig/app", subject); !slices.Equal(got, sortedOf(sig, sbom)) {
		t.Errorf("regctl: fallback tag lists %v after an attach through the API, want the 2 that Distribution's clients wrote", got)
	}

	// A fallback-listed referrer deleted through regctl leaves the list,
	// though the fallback tag still names it.
	oras.run("manifest", "delete", "--force", addr+"/sig/app@"+sig)
	wantReferrers(t, "regctl after a delete", oras.discover(ref, viaAPI...),
		map[string]string{sbom: sbomType, vuln: vulnType})
	if got := fallbackTagDigests(t, addr, "sig/app", subject); !slices.Contains(got, sig) {
		t.Errorf("regctl: fallback tag lists %v; the test needs it to still name the deleted %s", got, sig)
	}
}

func sortedOf(ss ...string) []string {
	return slices.Sorted(slices.Values(ss))
}

// TestReferrersFallbackTagsForDistribution: referrers attached through
// regctl reach Distribution's clients only with
// regctl.referrers.fallbacktags, which rewrites the fallback index on
// every referrer push and delete, keeping what Distribution's clients
// added to it meanwhile, and deletes the tag with the last referrer.
func TestReferrersFallbackTagsForDistribution(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[on], func(t *testing.T) {
			root := newSharedRoot(t, on)
			oras := newOras(t)
			addr := root.regctl()
			subject := pushImage(t, addr+"/sig/app:v1")
			sig := oras.attach(addr+"/sig/app:v1", "application/x.sig", "signature")
			sbom := oras.attach(addr+"/sig/app:v1", "application/spdx+json", "{}")
			both := map[string]string{sig: "application/x.sig", sbom: "application/spdx+json"}
			wantReferrers(t, "regctl", oras.discover(addr+"/sig/app:v1", viaAPI...), both)

			addr = root.distribution()
			got := oras.discover(addr + "/sig/app:v1")
			if !on {
				// The caveat: without the setting Distribution's clients
				// do not see referrers pushed through regctl's API.
				wantReferrers(t, "Distribution without fallback tags", got, nil)

				// Turned on later, regctl's start brings the fallback
				// tags of the referrers pushed before up to date.
				root.cfg.FallbackTags = true
				regctlAddr := root.regctl()
				fallback := "sha256-" + subject.Hex
				// Wait until the tag resolves, not just until it is listed:
				// the listing shows a tag from its first link on.
				waitFor(t, 30*time.Second, "regctl to write the fallback tag "+fallback, func() bool {
					_, err := remote.Head(mustRef(t, regctlAddr+"/sig/app:"+fallback))
					return err == nil
				})
				addr = root.distribution()
				wantReferrers(t, "Distribution after the backfill", oras.discover(addr+"/sig/app:v1"), both)
				return
			}
			wantReferrers(t, "Distribution", got, both)
			// Distribution's client adds one to the index regctl wrote.
			vuln := oras.attach(addr+"/sig/app:v1", "application/x.vuln", "no findings")

			// regctl's rewrite on a delete keeps the one that client added.
			addr = root.regctl()
			oras.run("manifest", "delete", "--force", addr+"/sig/app@"+sig)
			addr = root.distribution()
			wantReferrers(t, "Distribution after a delete through regctl", oras.discover(addr+"/sig/app:v1"),
				map[string]string{sbom: "application/spdx+json", vuln: "application/x.vuln"})

			// With the last referrer the tag goes.
			addr = root.regctl()
			oras.run("manifest", "delete", "--force", addr+"/sig/app@"+sbom)
			oras.run("manifest", "delete", "--force", addr+"/sig/app@"+vuln)
			addr = root.distribution()
			wantReferrers(t, "Distribution after the last delete", oras.discover(addr+"/sig/app:v1"), nil)
			if tags, err := remote.List(mustRef(t, addr+"/sig/app:v1").Context()); err != nil || !slices.Equal(tags, []string{"v1"}) {
				t.Errorf("Distribution: tags %v (%v), want only v1 (fallback tag of %s gone)", tags, err, subject)
			}
		})
	}
}

// cosignClient runs cosign v2 with a key pair of its own, in OCI 1.1 mode
// (signatures are referrers of the image), without the transparency log.
type cosignClient struct {
	t   *testing.T
	env []string
	dir string // holds cosign.key and cosign.pub
}

func newCosign(t *testing.T) *cosignClient {
	t.Helper()
	c := &cosignClient{t: t, dir: t.TempDir(),
		env: append(clientEnv(t), "COSIGN_PASSWORD=", "COSIGN_EXPERIMENTAL=1")}
	runClient(t, c.env, c.dir, "cosign", "generate-key-pair")
	return c
}

func (c *cosignClient) sign(image string) {
	c.t.Helper()
	runClient(c.t, c.env, c.dir, "cosign", "sign", "--key", "cosign.key", "--tlog-upload=false",
		"--allow-http-registry", "--registry-referrers-mode=oci-1-1", "-y", image)
}

func (c *cosignClient) verify(image string) (string, error) {
	c.t.Helper()
	out, errOut, err := tryClient(c.t, c.env, c.dir, "cosign", "verify", "--key", "cosign.pub",
		"--insecure-ignore-tlog", "--allow-http-registry", "--experimental-oci11", image)
	return out + errOut, err
}

// mustVerify fails the test unless cosign verifies image's signature,
// with the image digest in the verified claims.
func (c *cosignClient) mustVerify(what, image string, subject v1.Hash) {
	c.t.Helper()
	out, err := c.verify(image)
	if err != nil || !strings.Contains(out, `"docker-manifest-digest":"`+subject.String()+`"`) {
		c.t.Errorf("%s: cosign verify %s: %v\n%s", what, image, err, out)
	}
}

// signatureReferrers lists the digests of subject's referrers that
// regctl's referrers API at addr answers for cosign's signature type.
func signatureReferrers(t *testing.T, addr, repo string, subject v1.Hash) []string {
	t.Helper()
	idx, err := remote.Referrers(mustRef(t, addr+"/"+repo+"@"+subject.String()).(name.Digest),
		remote.WithFilter("artifactType", "application/vnd.dev.cosign.artifact.sig.v1+json"))
	if err != nil {
		t.Fatalf("referrers of %s: %v", subject, err)
	}
	return indexDigests(t, idx)
}

// TestReferrersCosign signs an image with cosign in OCI 1.1 mode on one
// server and verifies it on the other, both ways: signed through
// Distribution (the signature lands in the fallback index) it verifies
// through regctl, whose referrers API lists it; signed through regctl with
// fallback tags, it verifies through Distribution, which only has the
// fallback index to go on.
func TestReferrersCosign(t *testing.T) {
	for _, tc := range []struct {
		name         string
		fallbackTags bool
		toRegctl     bool // signed through Distribution, verified through regctl
	}{
		{"DistributionToRegctl", false, true},
		{"RegctlToDistribution", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := newSharedRoot(t, tc.fallbackTags)
			serve := []func() string{root.regctl, root.distribution}
			if tc.toRegctl {
				slices.Reverse(serve)
			}
			cosign := newCosign(t)

			addr := serve[0]()
			subject := pushImage(t, addr+"/img/app:v1")
			cosign.sign(addr + "/img/app@" + subject.String())
			cosign.mustVerify("where it was signed", addr+"/img/app@"+subject.String(), subject)

			addr = serve[1]()
			if got := fallbackTagDigests(t, addr, "img/app", subject); len(got) != 1 {
				t.Errorf("fallback tag lists %v, want cosign's signature", got)
			}
			if tc.toRegctl {
				if got := signatureReferrers(t, addr, "img/app", subject); len(got) != 1 {
					t.Errorf("regctl: referrers API lists signatures %v, want 1", got)
				}
			}
			cosign.mustVerify("on the other server", addr+"/img/app@"+subject.String(), subject)

			// An image nobody signed does not verify: the check can fail.
			other := pushImage(t, addr+"/img/app:v2")
			if out, err := cosign.verify(addr + "/img/app@" + other.String()); err == nil {
				t.Errorf("cosign verified an unsigned image:\n%s", out)
			}
		})
	}
}
