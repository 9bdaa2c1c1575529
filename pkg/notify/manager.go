package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"regctl/pkg/distconfig"
)

// Defaults for Config fields left zero.
const (
	DefaultHandoff    = 4096
	DefaultMaxBackoff = time.Minute
	maxBatch          = 512 // events written to disk at once
	// maxDelivery is the most events sent in one envelope: the events
	// queued while a request was in flight go together, so a busy
	// registry needs far fewer requests than events.
	maxDelivery = 32
)

// Config sets up a Manager.
type Config struct {
	// Endpoints as config.yml lists them; disabled ones are skipped.
	Endpoints []distconfig.Endpoint
	// Dir holds one queue folder per endpoint (QueueDir).
	Dir string
	// MaxEvents bounds each endpoint's queue on disk.
	MaxEvents int
	// Handoff bounds the events accepted from requests and not yet
	// written to disk, per endpoint (DefaultHandoff).
	Handoff int
	// MaxBackoff is the pause after a queue segment that no longer
	// reads could not be removed either (DefaultMaxBackoff). Delivery
	// retries follow the endpoint's maxretries and backoff alone.
	MaxBackoff time.Duration
	// Source is put into every event.
	Source Source
	Log    *slog.Logger
}

// Manager takes events from the registry, queues them per endpoint on
// disk and delivers them. Create it with New, then Start; Stop it after
// the HTTP server has stopped.
type Manager struct {
	cfg       Config
	endpoints []*endpoint
	log       *slog.Logger

	mu     sync.RWMutex // Notify holds it shared; Stop exclusively
	closed bool
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

// QueueDir is the folder of one endpoint's queue under dir. The name is
// escaped so that any endpoint name is one safe folder name.
func QueueDir(dir, name string) string {
	var b strings.Builder
	for _, c := range []byte(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return filepath.Join(dir, b.String())
}

// New opens every enabled endpoint's queue. It fails, naming
// notifications.queue.directory, when the folder cannot be created or
// written.
func New(cfg Config) (*Manager, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = distconfig.DefaultQueueMaxEvents
	}
	if cfg.Handoff <= 0 {
		cfg.Handoff = DefaultHandoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	m := &Manager{cfg: cfg, log: cfg.Log}
	for _, ep := range cfg.Endpoints {
		if ep.Disabled {
			continue
		}
		if cfg.Dir == "" {
			return nil, fmt.Errorf("notifications.queue.directory: no folder for the notification queues")
		}
		q, err := OpenQueue(QueueDir(cfg.Dir, ep.Name), cfg.MaxEvents)
		if err != nil {
			m.closeQueues()
			return nil, fmt.Errorf("notifications.queue.directory: queue of endpoint %q: %w", ep.Name, err)
		}
		m.endpoints = append(m.endpoints, newEndpoint(ep, q, cfg))
	}
	return m, nil
}

// Start runs each endpoint's disk writer and delivery loop.
func (m *Manager) Start(src Source) {
	m.cfg.Source = src
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	for _, e := range m.endpoints {
		if n := e.q.Pending(); n > 0 {
			m.log.Info("notification events pending from an earlier run", "endpoint", e.cfg.Name, "pending", n)
		}
		m.wg.Add(2)
		go func() { defer m.wg.Done(); e.writeLoop() }()
		go func() { defer m.wg.Done(); e.deliverLoop(ctx) }()
	}
}

// Stop refuses further events, writes the ones handed off so far to disk
// and stops delivery; what is undelivered stays queued for the next run.
func (m *Manager) Stop() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	m.mu.Unlock()
	for _, e := range m.endpoints {
		close(e.in) // the writer drains what is left, then ends
	}
	if m.stop != nil {
		m.stop()
	}
	m.wg.Wait()
	m.closeQueues()
}

func (m *Manager) closeQueues() {
	for _, e := range m.endpoints {
		e.q.Close()
	}
}

// Notify hands an event to every endpoint that does not ignore it. It
// never blocks: when an endpoint's hand-off is full, the event is dropped
// for that endpoint, counted and logged.
func (m *Manager) Notify(ev Event) {
	if len(m.endpoints) == 0 {
		return
	}
	if ev.ID == "" {
		ev.ID = NewID()
	}
	if ev.Timestamp.IsZero() {
		ev.Timestamp = time.Now().UTC()
	}
	ev.Source = m.cfg.Source
	var data []byte
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		for _, e := range m.endpoints {
			if !e.ignores(&ev) {
				e.drop(1, "the daemon is stopping")
			}
		}
		return
	}
	for _, e := range m.endpoints {
		if e.ignores(&ev) {
			continue
		}
		if data == nil {
			var err error
			if data, err = json.Marshal(ev); err != nil {
				m.log.Error("encoding notification event", "err", err)
				return
			}
		}
		select {
		case e.in <- data:
		default:
			e.drop(1, "the hand-off to the disk queue is full")
		}
	}
}

// Stats are one endpoint's figures since the daemon started (Pending is
// the queue as it is now).
// The JSON names are those of Distribution's expvar figures, plus
// Dropped and queue.
type Stats struct {
	Name      string           `json:"name"`
	URL       string           `json:"url"`       // without credentials or query
	Pending   int64            `json:"Pending"`   // queued on disk or being written, not delivered
	Events    int64            `json:"Events"`    // events accepted for delivery
	Successes int64            `json:"Successes"` // delivered: the endpoint answered 2xx
	Failures  int64            `json:"Failures"`  // attempts answered with another status
	Errors    int64            `json:"Errors"`    // attempts with no answer (refused, timed out)
	Dropped   int64            `json:"Dropped"`   // events lost: queue full, hand-off full, unreadable segment
	Statuses  map[string]int64 `json:"Statuses"`  // failed attempts by status
	QueueDir  string           `json:"queue"`
	// LastError says why the last attempt failed, until one succeeds.
	LastError string `json:"LastError,omitempty"`
}

// Stats reports every enabled endpoint, in config order.
func (m *Manager) Stats() []Stats {
	out := make([]Stats, 0, len(m.endpoints))
	for _, e := range m.endpoints {
		out = append(out, e.stats())
	}
	return out
}

// endpoint is one webhook receiver with its queue.
type endpoint struct {
	cfg        distconfig.Endpoint
	q          *Queue
	in         chan []byte
	client     *http.Client
	log        *slog.Logger
	maxBackoff time.Duration
	ignoreMT   map[string]bool
	ignoreAct  map[string]bool
	safeURL    string

	events, successes, failures, errs, dropped atomic.Int64
	lastDropLog                                atomic.Int64 // unix nanoseconds
	statusMu                                   sync.Mutex
	statuses                                   map[string]int64
	lastErr                                    string
}

func newEndpoint(ep distconfig.Endpoint, q *Queue, cfg Config) *endpoint {
	timeout := ep.Timeout
	if timeout <= 0 {
		timeout = 500 * time.Millisecond
	}
	e := &endpoint{
		cfg: ep, q: q, in: make(chan []byte, cfg.Handoff),
		// Redirects are never followed: Go's client would send the
		// endpoint's headers, secrets among them (X-Api-Key...), on to
		// whatever host the Location names. A 3xx is a failed attempt.
		client: &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		maxBackoff: max(cfg.MaxBackoff, ep.Backoff),
		ignoreMT:   map[string]bool{}, ignoreAct: map[string]bool{},
		safeURL:  RedactURL(ep.URL),
		statuses: map[string]int64{},
	}
	e.log = cfg.Log.With("endpoint", ep.Name)
	for _, mt := range append(append([]string{}, ep.IgnoredMediaTypes...), ep.Ignore.MediaTypes...) {
		e.ignoreMT[mt] = true
	}
	for _, a := range ep.Ignore.Actions {
		e.ignoreAct[a] = true
	}
	return e
}

// RedactURL is u without user info, query or fragment: what logs and
// status may show of an endpoint URL.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment, u.ForceQuery = nil, "", "", false
	return u.String()
}

func (e *endpoint) ignores(ev *Event) bool {
	return e.ignoreAct[ev.Action] || (ev.Target.MediaType != "" && e.ignoreMT[ev.Target.MediaType])
}

// drop counts lost events and logs them, at most once every 10 seconds
// per endpoint so a flood cannot flood the log too.
func (e *endpoint) drop(n int, why string) {
	total := e.dropped.Add(int64(n))
	now := time.Now().UnixNano()
	last := e.lastDropLog.Load()
	if now-last < int64(10*time.Second) || !e.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	e.log.Error("notification events dropped", "reason", why, "dropped", n, "dropped_total", total)
}

func (e *endpoint) stats() Stats {
	e.statusMu.Lock()
	st := make(map[string]int64, len(e.statuses))
	for k, v := range e.statuses {
		st[k] = v
	}
	lastErr := e.lastErr
	e.statusMu.Unlock()
	return Stats{
		Name: e.cfg.Name, URL: e.safeURL, QueueDir: e.q.Dir(),
		Pending: int64(e.q.Pending() + len(e.in)),
		Events:  e.events.Load(), Successes: e.successes.Load(), Failures: e.failures.Load(),
		Errors: e.errs.Load(), Dropped: e.dropped.Load(), Statuses: st, LastError: lastErr,
	}
}

// writeLoop moves handed-off events to the disk queue in batches, one
// fsync per batch, until in is closed and drained.
func (e *endpoint) writeLoop() {
	batch := make([][]byte, 0, maxBatch)
	for first := range e.in {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxBatch {
			select {
			case b, ok := <-e.in:
				if !ok {
					break fill
				}
				batch = append(batch, b)
			default:
				break fill
			}
		}
		n, err := e.q.Append(batch)
		e.events.Add(int64(n))
		switch {
		case err != nil:
			e.drop(len(batch), "writing the queue failed: "+err.Error())
		case n < len(batch):
			e.drop(len(batch)-n, fmt.Sprintf("the queue is full (notifications.queue.maxevents %d)", e.q.max))
		}
	}
}

// deliverLoop sends queued events oldest first, up to maxDelivery in one
// envelope. Events leave the queue only on a 2xx answer.
//
// Failed attempts follow CNCF Distribution's rhythm (its endpoint's
// circuit breaker, configured by threshold and backoff): a failure is
// retried at once until maxretries (threshold) attempts in a row have
// failed; from then on each attempt waits backoff after the previous
// failure, with no growth, until the endpoint answers 2xx, which resets
// the count. Like Distribution, it never gives an event up; unlike
// Distribution, the events wait on disk, so new ones are dropped only
// when the queue is full.
func (e *endpoint) deliverLoop(ctx context.Context) {
	attempt := 0
	for {
		evs, err := e.q.NextBatch(maxDelivery)
		if err != nil {
			n, derr := e.q.DropHead()
			e.drop(n, "a queue segment no longer reads: "+err.Error())
			if derr != nil {
				e.log.Error("removing an unreadable queue segment", "err", derr)
				if !sleep(ctx, e.maxBackoff) {
					return
				}
			}
			continue
		}
		if len(evs) == 0 {
			select {
			case <-e.q.Wake():
				continue
			case <-ctx.Done():
				return
			}
		}
		status, err := e.post(ctx, evs)
		if err == nil {
			e.successes.Add(int64(len(evs)))
			e.statusMu.Lock()
			e.lastErr = ""
			e.statusMu.Unlock()
			if err := e.q.AckN(len(evs)); err != nil {
				e.log.Warn("recording a delivery in the queue failed; events may be sent again", "err", err)
			}
			if attempt >= max(e.cfg.MaxRetries, 1) {
				e.log.Info("notification endpoint recovered", "after_attempts", attempt)
			}
			attempt = 0
			continue
		}
		if ctx.Err() != nil {
			return // stopping: the event stays queued
		}
		attempt++
		if status == 0 {
			e.errs.Add(1)
		} else {
			e.failures.Add(1)
		}
		e.statusMu.Lock()
		if status != 0 {
			e.statuses[strconv.Itoa(status)+" "+http.StatusText(status)]++
		}
		e.lastErr = errText(err)
		e.statusMu.Unlock()
		wait := retryWait(attempt, e.cfg.MaxRetries, e.cfg.Backoff)
		if attempt == max(e.cfg.MaxRetries, 1) {
			e.log.Warn("notification endpoint failing; events stay queued and are retried every backoff",
				"url", e.safeURL, "attempts", attempt, "backoff", e.cfg.Backoff, "status", status, "err", errText(err), "pending", e.q.Pending())
		}
		e.log.Debug("notification delivery failed", "attempt", attempt, "status", status, "err", errText(err), "retry_in", wait)
		if wait > 0 && !sleep(ctx, wait) {
			return
		}
	}
}

// retryWait is the pause before the next attempt after failures
// attempts in a row have failed: none below threshold, then backoff
// (Distribution's breaker: threshold failures open it, and it lets one
// attempt through every backoff).
func retryWait(failures, threshold int, backoff time.Duration) time.Duration {
	if failures < threshold {
		return 0
	}
	return max(backoff, 10*time.Millisecond)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	// url.Error repeats the URL, which may hold credentials.
	if ue, ok := err.(*url.Error); ok {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// post sends events in one envelope. It returns the answer's status (0
// when there is none) and, unless it is 2xx, an error saying why the
// attempt failed.
func (e *endpoint) post(ctx context.Context, evs [][]byte) (int, error) {
	size := 14
	for _, ev := range evs {
		size += len(ev) + 1
	}
	body := make([]byte, 0, size)
	body = append(body, `{"events":[`...)
	for i, ev := range evs {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, ev...)
	}
	body = append(body, "]}"...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	for k, vs := range e.cfg.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", EventsMediaType)
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, answerError(resp)
}

// answerError is nil for a 2xx answer and otherwise what the log and
// the stats show of it. A redirect names its Location, resolved against
// the endpoint URL, without credentials or query.
func answerError(resp *http.Response) error {
	st := resp.StatusCode
	if st >= 200 && st < 300 {
		return nil
	}
	if loc := resp.Header.Get("Location"); st >= 300 && st < 400 && loc != "" {
		if u, err := resp.Location(); err == nil {
			loc = u.String()
		}
		return fmt.Errorf("endpoint answered %d redirect to %s; redirects are not followed", st, RedactURL(loc))
	}
	return fmt.Errorf("endpoint answered %d %s", st, http.StatusText(st))
}
