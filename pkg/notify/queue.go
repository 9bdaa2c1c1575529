package notify

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"regctl/internal/fsutil"
)

// Queue is one endpoint's pending events on disk, in a folder of its own:
//
//   - segment files <seq>.jsonl, one encoded event a line, each written
//     whole (fsutil.WriteFileAtomic: temp file, fsync, rename, fsync of
//     the folder), so a segment is either all there or absent, whatever
//     kills the process;
//   - a file "cursor" holding "<seq> <n>": the first n events of segment
//     seq were delivered, written the same way after every delivery. A
//     crash between a delivery and its cursor sends those events again;
//     receivers can tell them apart by the event id.
//
// Files whose names start with "." are temp files; a crash may leave
// them, and opening the queue removes them.
//
// A segment is removed once all its events were delivered. Events leave
// the queue only through Ack (a 2xx from the endpoint) or DropHead (a
// segment that no longer reads). The queue holds at most max events;
// Append takes what fits and reports the rest, for the caller to count.
type Queue struct {
	dir    string
	max    int
	unlock func()

	mu      sync.Mutex
	segs    []segMeta // oldest first
	pending int       // events in segs, less those delivered, plus writes in progress
	nextSeq uint64
	done    int      // events of segs[0] delivered
	head    [][]byte // the events of segs[0], read when first needed
	wake    chan struct{}
}

type segMeta struct {
	seq uint64
	n   int
}

const (
	segSuffix  = ".jsonl"
	cursorName = "cursor"
	lockName   = "lock"
)

func segName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, segSuffix) }

// OpenQueue opens (creating it when missing) the queue in dir, holding at
// most max events. Temp files left by a crash are removed.
func OpenQueue(dir string, limit int) (*Queue, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("queue %s: the size limit must be positive, not %d", dir, limit)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := probeWritable(dir); err != nil {
		return nil, err
	}
	// One process per queue: two writers would number segments alike.
	unlock, err := fsutil.Lock(filepath.Join(dir, lockName))
	if errors.Is(err, fsutil.ErrLocked) {
		return nil, fmt.Errorf("%s is in use by another regctl serve: give each daemon its own notifications.queue.directory", dir)
	}
	if err != nil {
		return nil, err
	}
	q := &Queue{dir: dir, max: limit, unlock: unlock, wake: make(chan struct{}, 1)}
	entries, err := os.ReadDir(dir)
	if err != nil {
		unlock()
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			// A temp file of a write a crash interrupted.
			os.Remove(filepath.Join(dir, name))
			continue
		}
		s, ok := strings.CutSuffix(name, segSuffix)
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			unlock()
			return nil, err
		}
		q.segs = append(q.segs, segMeta{seq: seq, n: len(splitLines(data))})
		q.nextSeq = max(q.nextSeq, seq+1)
	}
	slices.SortFunc(q.segs, func(a, b segMeta) int { return cmpU64(a.seq, b.seq) })
	for _, s := range q.segs {
		q.pending += s.n
	}
	if seq, n, ok := readCursor(dir); ok {
		// New segments never reuse the cursor's number, so a cursor left
		// behind (a crash between removing a segment and its cursor)
		// can never apply to another segment.
		q.nextSeq = max(q.nextSeq, seq+1)
		if len(q.segs) > 0 && seq == q.segs[0].seq {
			q.done = min(max(n, 0), q.segs[0].n)
			q.pending -= q.done
		}
	}
	return q, nil
}

// readCursor reads the "<seq> <n>" cursor file, if there is a valid one.
func readCursor(dir string) (seq uint64, n int, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, cursorName))
	if err != nil {
		return 0, 0, false
	}
	if _, err := fmt.Sscanf(string(b), "%d %d", &seq, &n); err != nil {
		return 0, 0, false
	}
	return seq, n, true
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// probeWritable creates and removes a file in dir.
func probeWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".probe-*.tmp")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

func splitLines(data []byte) [][]byte {
	var out [][]byte
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) > 0 {
			out = append(out, line)
		}
	}
	return out
}

// Close releases the queue's folder for another process; what is queued
// stays on disk.
func (q *Queue) Close() {
	if q.unlock != nil {
		q.unlock()
		q.unlock = nil
	}
}

// Dir is the queue's folder.
func (q *Queue) Dir() string { return q.dir }

// Pending is the number of events not yet delivered.
func (q *Queue) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending
}

// Wake is signalled after each Append that added events.
func (q *Queue) Wake() <-chan struct{} { return q.wake }

// Append writes events (each one line of JSON, no newline) as one new
// segment. It takes as many as fit under the limit and returns how many;
// the caller counts the rest as dropped. The events are durable when it
// returns without error.
func (q *Queue) Append(events [][]byte) (int, error) {
	q.mu.Lock()
	room := q.max - q.pending
	if room <= 0 || len(events) == 0 {
		q.mu.Unlock()
		return 0, nil
	}
	events = events[:min(len(events), room)]
	seq := q.nextSeq
	q.nextSeq++
	q.pending += len(events) // reserved while the file is written
	q.mu.Unlock()

	err := writeSegment(filepath.Join(q.dir, segName(seq)), events)

	q.mu.Lock()
	defer q.mu.Unlock()
	if err != nil {
		q.pending -= len(events)
		return 0, err
	}
	i, _ := slices.BinarySearchFunc(q.segs, seq, func(s segMeta, seq uint64) int { return cmpU64(s.seq, seq) })
	q.segs = slices.Insert(q.segs, i, segMeta{seq: seq, n: len(events)})
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return len(events), nil
}

func writeSegment(path string, events [][]byte) error {
	var buf bytes.Buffer
	for _, e := range events {
		buf.Write(e)
		buf.WriteByte('\n')
	}
	return fsutil.WriteFileAtomic(path, buf.Bytes(), 0o600)
}

// Next returns the oldest undelivered event, or ok=false when there is
// none. It stays the oldest until Ack or DropHead.
func (q *Queue) Next() (event []byte, ok bool, err error) {
	evs, err := q.NextBatch(1)
	if len(evs) == 0 {
		return nil, false, err
	}
	return evs[0], true, nil
}

// NextBatch returns up to max of the oldest undelivered events, all from
// one segment; none when the queue is empty. They stay the oldest until
// AckN or DropHead.
func (q *Queue) NextBatch(max int) ([][]byte, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.segs) == 0 {
		return nil, nil
	}
	if q.head == nil {
		data, err := os.ReadFile(filepath.Join(q.dir, segName(q.segs[0].seq)))
		if err != nil {
			return nil, err
		}
		head := splitLines(data)
		if len(head) != q.segs[0].n {
			return nil, fmt.Errorf("segment %s holds %d events, %d when the queue opened", segName(q.segs[0].seq), len(head), q.segs[0].n)
		}
		q.head = head
	}
	end := min(q.done+max, len(q.head))
	return q.head[q.done:end:end], nil
}

// Ack removes the event Next returned: the endpoint accepted it.
func (q *Queue) Ack() error { return q.AckN(1) }

// AckN removes the first n events NextBatch returned.
func (q *Queue) AckN(n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.segs) == 0 || n <= 0 || q.done+n > q.segs[0].n {
		return fmt.Errorf("ack of %d events that were not handed out", n)
	}
	q.done += n
	q.pending -= n
	if q.done < q.segs[0].n {
		return fsutil.WriteFileAtomic(filepath.Join(q.dir, cursorName), fmt.Appendf(nil, "%d %d\n", q.segs[0].seq, q.done), 0o600)
	}
	return q.popHead()
}

// DropHead removes the oldest segment whatever it holds (it no longer
// reads) and returns how many undelivered events went with it.
func (q *Queue) DropHead() (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.segs) == 0 {
		return 0, nil
	}
	n := q.segs[0].n - q.done
	q.pending -= n
	return n, q.popHead()
}

// popHead removes the oldest segment, then its cursor.
func (q *Queue) popHead() error {
	err := os.Remove(filepath.Join(q.dir, segName(q.segs[0].seq)))
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if cerr := os.Remove(filepath.Join(q.dir, cursorName)); cerr != nil && !errors.Is(cerr, os.ErrNotExist) && err == nil {
		err = cerr
	}
	q.segs, q.head, q.done = q.segs[1:], nil, 0
	return err
}

// Backlog counts the undelivered events in a queue folder without
// opening the queue: for `regctl status`, which runs beside the daemon.
// A missing folder holds none.
func Backlog(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var first uint64
	total, haveFirst := 0, false
	firstN := 0
	for _, e := range entries {
		s, ok := strings.CutSuffix(e.Name(), segSuffix)
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // delivered while we looked
		}
		if err != nil {
			return 0, err
		}
		n := len(splitLines(data))
		total += n
		if !haveFirst || seq < first {
			first, firstN, haveFirst = seq, n, true
		}
	}
	if seq, n, ok := readCursor(dir); ok && haveFirst && seq == first {
		total -= min(max(n, 0), firstN)
	}
	return total, nil
}
