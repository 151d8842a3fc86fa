package etcdraft

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/raft"
	"go.etcd.io/etcd/raft/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"walrus/client/go/walrus"
	pb "walrus/proto/walruspb"
)

// remoteView is the LogView on walrusd's ranged reads (Entries, Term): the
// node holds no entries in memory, only the bounds of its log and two terms.
// A read waits out a walrusd restart (up to the view's timeout): etcd raft
// panics on any storage read error but ErrCompacted.
//
// The bounds are the node's, as in etcd's MemoryStorage: FirstIndex is one
// past the newest snapshot applied or the last Compact, LastIndex the last
// entry Save made durable. walrusd may hold more below FirstIndex (entries a
// snapshot covers stay until their segment is released); the view never
// asks for them.
type remoteView struct {
	client  *walrus.Client
	timeout time.Duration

	mu        sync.Mutex
	floor     uint64 // compacted up to here: FirstIndex is floor+1
	floorTerm uint64 // the term at floor, when known (0: ask walrusd)
	last      uint64
	lastTerm  uint64
}

// NewRemoteView returns a LogView that reads entries and terms from client's
// walrusd. Open sets its bounds from the daemon; Save keeps them in step.
func NewRemoteView(client *walrus.Client, timeout time.Duration) LogView {
	return &remoteView{client: client, timeout: timeout}
}

// storageError maps walrusd's codes onto raft.Storage's errors.
func storageError(err error) error {
	switch walrus.Code(err) {
	case codes.NotFound:
		return raft.ErrCompacted
	case codes.OutOfRange:
		return raft.ErrUnavailable
	}
	return err
}

func (v *remoteView) Entries(lo, hi, maxSize uint64) ([]raftpb.Entry, error) {
	v.mu.Lock()
	floor, last := v.floor, v.last
	v.mu.Unlock()
	if lo <= floor {
		return nil, raft.ErrCompacted
	}
	if hi > last+1 {
		return nil, raft.ErrUnavailable
	}
	if lo >= hi {
		return nil, nil
	}
	var r *pb.EntriesResponse
	err := v.untilAnswered(func(ctx context.Context) (err error) {
		r, err = v.client.Entries(ctx, lo, hi, maxSize)
		return err
	})
	if err != nil {
		return nil, storageError(err)
	}
	return EntriesFromWalrus(r.Entries), nil
}

// untilAnswered retries call while walrusd is unavailable (restarting),
// for up to the view's timeout. etcd raft treats any storage read error
// but ErrCompacted as fatal (it panics), so a read waits out a walrusd
// restart as it would wait out a slow disk.
func (v *remoteView) untilAnswered(call func(context.Context) error) error {
	deadline := time.Now().Add(v.timeout)
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := call(ctx)
		cancel()
		if walrus.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (v *remoteView) Term(i uint64) (uint64, error) {
	v.mu.Lock()
	floor, floorTerm, last, lastTerm := v.floor, v.floorTerm, v.last, v.lastTerm
	v.mu.Unlock()
	switch {
	case i < floor:
		return 0, raft.ErrCompacted
	case i > last:
		return 0, raft.ErrUnavailable
	case i == last && (lastTerm != 0 || last == 0):
		return lastTerm, nil
	case i == floor && (floorTerm != 0 || floor == 0):
		return floorTerm, nil
	}
	var r *pb.TermResponse
	err := v.untilAnswered(func(ctx context.Context) (err error) {
		r, err = v.client.Term(ctx, i)
		return err
	})
	if err != nil {
		return 0, storageError(err)
	}
	return r.GetTerm(), nil
}

func (v *remoteView) FirstIndex() (uint64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.floor + 1, nil
}

func (v *remoteView) LastIndex() (uint64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.last, nil
}

func (v *remoteView) Append(entries []raftpb.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	e := entries[len(entries)-1]
	if e.Index <= v.floor {
		return nil // all compacted, as MemoryStorage ignores them
	}
	if entries[0].Index > v.last+1 {
		return fmt.Errorf("etcdraft: entries from %d leave a gap after %d", entries[0].Index, v.last)
	}
	v.last, v.lastTerm = e.Index, e.Term
	return nil
}

func (v *remoteView) ApplySnapshot(snap raftpb.Snapshot) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if snap.Metadata.Index < v.floor {
		return raft.ErrSnapOutOfDate
	}
	v.floor, v.floorTerm = snap.Metadata.Index, snap.Metadata.Term
	v.last, v.lastTerm = snap.Metadata.Index, snap.Metadata.Term
	return nil
}

func (v *remoteView) Compact(index uint64) error {
	v.mu.Lock()
	floor, last := v.floor, v.last
	v.mu.Unlock()
	if index <= floor {
		return raft.ErrCompacted
	}
	if index > last {
		return fmt.Errorf("etcdraft: compact %d is beyond the last index %d", index, last)
	}
	term, err := v.Term(index)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if index > v.floor {
		v.floor, v.floorTerm = index, term
	}
	return nil
}

// load sets the bounds for a log read from snap's marker: the entries after
// it that walrusd holds, up to its last durable index.
func (v *remoteView) load(ctx context.Context, snap raftpb.Snapshot) error {
	r, err := v.client.Term(ctx, snap.Metadata.Index)
	if walrus.Code(err) == codes.OutOfRange {
		// The log ends before the snapshot: its marker was never recorded.
		return status.Errorf(codes.NotFound, "walrus log ends before the snapshot's index %d: %v",
			snap.Metadata.Index, err)
	}
	if err != nil {
		return fmt.Errorf("walrus term of the snapshot's index %d: %w", snap.Metadata.Index, err)
	}
	if r.GetTerm() != snap.Metadata.Term {
		return status.Errorf(codes.FailedPrecondition,
			"walrus holds term %d at the snapshot's index %d, not %d: its log does not follow this snapshot",
			r.GetTerm(), snap.Metadata.Index, snap.Metadata.Term)
	}
	last := r.GetLastIndex()
	lastTerm := snap.Metadata.Term
	if last > snap.Metadata.Index {
		t, err := v.client.Term(ctx, last)
		if err != nil {
			return fmt.Errorf("walrus term of the last index %d: %w", last, err)
		}
		lastTerm = t.GetTerm()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.floor, v.floorTerm = snap.Metadata.Index, snap.Metadata.Term
	v.last, v.lastTerm = last, lastTerm
	return nil
}
