package clock

import (
	"context"
	"testing"
	"time"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestFakeTimersFireInOrderAtTheirDeadline(t *testing.T) {
	f := NewFake(epoch)
	late, early := f.NewTimer(2*time.Second), f.NewTimer(time.Second)
	tick := f.NewTicker(700 * time.Millisecond)
	if f.Timers() != 3 {
		t.Fatalf("armed %d, want 3", f.Timers())
	}
	f.Advance(999 * time.Millisecond)
	select {
	case <-early.C():
		t.Fatal("fired before its deadline")
	default:
	}
	if got := <-tick.C(); !got.Equal(epoch.Add(700 * time.Millisecond)) {
		t.Errorf("tick at %v", got.Sub(epoch))
	}
	f.Advance(time.Second + time.Millisecond)
	if got := <-early.C(); !got.Equal(epoch.Add(time.Second)) {
		t.Errorf("early fired at %v", got.Sub(epoch))
	}
	if got := <-late.C(); !got.Equal(epoch.Add(2 * time.Second)) {
		t.Errorf("late fired at %v", got.Sub(epoch))
	}
	// The tick at 1.4 s; the next, at 2.1 s, is still to come.
	if got := <-tick.C(); !got.Equal(epoch.Add(1400 * time.Millisecond)) {
		t.Errorf("second tick at %v", got.Sub(epoch))
	}
	if now := f.Now(); !now.Equal(epoch.Add(2 * time.Second)) {
		t.Errorf("now %v", now.Sub(epoch))
	}
	if f.Timers() != 1 {
		t.Errorf("armed %d after the timers fired, want the ticker", f.Timers())
	}
	tick.Stop()
	if f.Timers() != 0 {
		t.Errorf("armed %d after Stop", f.Timers())
	}
}

func TestFakeStopAndResetDropStaleValues(t *testing.T) {
	f := NewFake(epoch)
	tm := f.NewTimer(time.Second)
	f.Advance(time.Second)
	if tm.Reset(time.Second) {
		t.Error("Reset of a fired timer reports it armed")
	}
	select {
	case <-tm.C():
		t.Fatal("a stale value after Reset")
	default:
	}
	if !tm.Stop() {
		t.Error("Stop of an armed timer reports it fired")
	}
	f.Advance(time.Hour)
	select {
	case <-tm.C():
		t.Fatal("a stopped timer fired")
	default:
	}
}

func TestFakeWaitTimersAndSleep(t *testing.T) {
	f := NewFake(epoch)
	done := make(chan error, 1)
	go func() { done <- Sleep(context.Background(), f, time.Minute) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.WaitTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	f.Advance(time.Minute)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if err := f.WaitTimers(short, 1); err == nil {
		t.Error("WaitTimers returned with no timer armed")
	}
}
