package gc

import "sync"

// progress forwards a phase's advance to Options.Progress, serialised,
// and about 200 times a phase at most: the caller draws a bar, and
// 100,000 calls would cost more than the work they report on.
type progress struct {
	mu          sync.Mutex
	fn          func(Phase, int, int)
	phase       Phase
	done, total int
	last        int
}

func (p *progress) start(phase Phase, total int) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.done, p.total, p.last = phase, 0, total, 0
	p.fn(phase, 0, total)
}

// add records n more done and, for a scan, grow more to do.
func (p *progress) add(n, grow int) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.total += grow
	if p.done >= p.total || p.done-p.last >= max(1, p.total/200) {
		p.last = p.done
		p.fn(p.phase, p.done, p.total)
	}
}
