package registryd

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"regctl/pkg/distconfig"
	"regctl/pkg/metrics"
	"regctl/pkg/notify"
	"regctl/pkg/storage"
)

// The benchmarks call the handler directly, without a network, so a
// profile shows the server's own work:
//
//	go test -run '^$' -bench . -cpuprofile cpu.out ./pkg/registryd

// benchServer is a server on a filesystem driver in a temporary folder.
func benchServer(b *testing.B) *Server {
	b.Helper()
	fs, err := storage.NewFilesystem(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return New(Options{Driver: fs, DeleteEnabled: true})
}

// benchDo runs one request through the handler and fails on another status.
func benchDo(b *testing.B, s *Server, method, target string, body []byte, want int, hdr ...string) *httptest.ResponseRecorder {
	b.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != want {
		b.Fatalf("%s %s: %d, want %d: %s", method, target, w.Code, want, w.Body.Bytes())
	}
	return w
}

func benchRandom(b *testing.B, n int) []byte {
	b.Helper()
	p := make([]byte, n)
	rand.Read(p)
	return p
}

// benchImage pushes an image like the one bench/regbench pushes (a
// config and four layers, here small) and tags it "bench".
func benchImage(b *testing.B, s *Server, repo string) digest.Digest {
	b.Helper()
	push := func(mt string, data []byte) ocispec.Descriptor {
		d := digest.FromBytes(data)
		benchDo(b, s, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), data, http.StatusCreated)
		return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(data))}
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    push("application/vnd.docker.container.image.v1+json", benchRandom(b, 560)),
	}
	for range 4 {
		m.Layers = append(m.Layers, push(ocispec.MediaTypeImageLayerGzip, benchRandom(b, 1024)))
	}
	body, err := json.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	w := benchDo(b, s, http.MethodPut, "/v2/"+repo+"/manifests/bench", body, http.StatusCreated,
		"Content-Type", ocispec.MediaTypeImageManifest)
	return digest.Digest(w.Header().Get("Docker-Content-Digest"))
}

// benchTagGets times GETs of the manifest benchImage tagged.
func benchTagGets(b *testing.B, s *Server) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		benchDo(b, s, http.MethodGet, "/v2/bench/image/manifests/bench", nil, http.StatusOK,
			"Accept", ocispec.MediaTypeImageManifest)
	}
}

func BenchmarkManifestGet(b *testing.B) {
	s := benchServer(b)
	benchImage(b, s, "bench/image")
	benchTagGets(b, s)
}

func BenchmarkManifestGetByDigest(b *testing.B) {
	s := benchServer(b)
	d := benchImage(b, s, "bench/image")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		benchDo(b, s, http.MethodGet, "/v2/bench/image/manifests/"+d.String(), nil, http.StatusOK,
			"Accept", ocispec.MediaTypeImageManifest)
	}
}

func BenchmarkManifestGetParallel(b *testing.B) {
	s := benchServer(b)
	benchImage(b, s, "bench/image")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/v2/bench/image/manifests/bench", nil)
			req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Errorf("GET: %d", w.Code)
				return
			}
		}
	})
}

// BenchmarkBlobUpload pushes 8 MiB blobs as clients do: POST, one PATCH
// with the bytes, PUT ?digest=.
func BenchmarkBlobUpload(b *testing.B) {
	const size = 8 << 20
	s := benchServer(b)
	data := benchRandom(b, size)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		// A distinct blob each time, or the commit finds it stored.
		i++
		copy(data, strconv.Itoa(i)+"-")
		d := digest.FromBytes(data)
		w := benchDo(b, s, http.MethodPost, "/v2/bench/image/blobs/uploads/", nil, http.StatusAccepted)
		loc := w.Header().Get("Location")
		w = benchDo(b, s, http.MethodPatch, loc, data, http.StatusAccepted)
		loc = w.Header().Get("Location")
		benchDo(b, s, http.MethodPut, loc+"?digest="+d.String(), nil, http.StatusCreated)
	}
}

// BenchmarkBlobGet reads an 8 MiB blob through the handler (into a
// recorder, so no sendfile: this measures the handler's overhead).
func BenchmarkBlobGet(b *testing.B) {
	const size = 8 << 20
	s := benchServer(b)
	data := benchRandom(b, size)
	d := digest.FromBytes(data)
	benchDo(b, s, http.MethodPost, "/v2/bench/image/blobs/uploads/?digest="+d.String(), data, http.StatusCreated)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		benchDo(b, s, http.MethodGet, "/v2/bench/image/blobs/"+d.String(), nil, http.StatusOK)
	}
}

// BenchmarkManifestGetNotify is BenchmarkManifestGet with a notification
// endpoint: each GET hands a pull event to the queue (the endpoint is
// down, so the events stay queued; the queue drops past its bound).
func BenchmarkManifestGetNotify(b *testing.B) {
	fs, err := storage.NewFilesystem(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	m, err := notify.New(notify.Config{
		Endpoints: []distconfig.Endpoint{{Name: "bench", URL: "http://127.0.0.1:1/", Timeout: time.Second, MaxRetries: 1, Backoff: time.Hour}},
		Dir:       b.TempDir(), MaxEvents: 1 << 20,
	})
	if err != nil {
		b.Fatal(err)
	}
	m.Start(notify.Source{})
	defer m.Stop()
	s := New(Options{Driver: fs, DeleteEnabled: true, Notifier: m})
	benchImage(b, s, "bench/image")
	benchTagGets(b, s)
	b.StopTimer()
	st := m.Stats()[0]
	b.ReportMetric(float64(st.Dropped), "dropped")
}

// BenchmarkManifestGetMetrics is BenchmarkManifestGet with Prometheus
// metrics on: the request figures and the timed storage driver.
func BenchmarkManifestGetMetrics(b *testing.B) {
	fs, err := storage.NewFilesystem(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	mx := metrics.New()
	s := New(Options{Driver: mx.Driver(fs), DeleteEnabled: true, Observer: mx})
	benchImage(b, s, "bench/image")
	benchTagGets(b, s)
}

// BenchmarkReferrersGet lists four referrers of an image: pushed through
// regctl (its own index), or only in the referrers tag schema's fallback
// index, as Distribution's clients leave them.
func BenchmarkReferrersGet(b *testing.B) {
	for _, where := range []string{"own-index", "fallback-tag"} {
		b.Run(where, func(b *testing.B) {
			s := benchServer(b)
			subject := benchImage(b, s, "bench/image")
			var descs []ocispec.Descriptor
			for i := range 4 {
				m := ocispec.Manifest{
					Versioned:    specs.Versioned{SchemaVersion: 2},
					MediaType:    ocispec.MediaTypeImageManifest,
					ArtifactType: "application/x.sig",
					Config:       ocispec.DescriptorEmptyJSON,
					Layers:       []ocispec.Descriptor{ocispec.DescriptorEmptyJSON},
					Subject:      &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject, Size: 1},
					Annotations:  map[string]string{"n": strconv.Itoa(i)},
				}
				body, _ := json.Marshal(m)
				d := digest.FromBytes(body)
				benchDo(b, s, http.MethodPost, "/v2/bench/image/blobs/uploads/?digest="+ocispec.DescriptorEmptyJSON.Digest.String(), ocispec.DescriptorEmptyJSON.Data, http.StatusCreated)
				benchDo(b, s, http.MethodPut, "/v2/bench/image/manifests/"+d.String(), body, http.StatusCreated, "Content-Type", ocispec.MediaTypeImageManifest)
				descs = append(descs, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(body)), ArtifactType: m.ArtifactType})
			}
			if where == "fallback-tag" {
				if err := s.driver.Delete(b.Context(), storage.RegctlDir("bench/image")); err != nil {
					b.Fatal(err)
				}
				body, _ := json.Marshal(referrersIndex(descs))
				benchDo(b, s, http.MethodPut, "/v2/bench/image/manifests/"+fallbackTag(subject), body, http.StatusCreated, "Content-Type", ocispec.MediaTypeImageIndex)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w := benchDo(b, s, http.MethodGet, "/v2/bench/image/referrers/"+subject.String(), nil, http.StatusOK)
				if !bytes.Contains(w.Body.Bytes(), []byte(descs[3].Digest)) {
					b.Fatalf("referrers: %s", w.Body.Bytes())
				}
			}
		})
	}
}
