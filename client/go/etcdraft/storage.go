// Package etcdraft puts an etcd raft node (go.etcd.io/etcd/raft) on walrus.
//
// Storage implements raft.Storage and persists each raft.Ready to a walrusd
// in the order that keeps every crash state restartable (Save). Reads are
// served by a LogView: by default walrusd's ranged reads (Entries, Term), so
// the node holds no copy of its log, only its bounds; Options.NewLogView can
// give a cache in this process instead (NewMemoryView: etcd's MemoryStorage,
// loaded with ReadAll at Open), which answers without a round trip but holds
// the log since the last compaction in memory.
//
// Snapshot data is the application's: walrus keeps only snapshot markers
// (index, term). Storage hands rd.Snapshot to Options.PersistSnapshot before
// it records the marker, and the application gives Open the newest snapshot
// it holds on restart.
//
// Not safe for concurrent Save calls; the raft.Storage methods may be called
// concurrently with Save (the raft goroutine reads while the application's
// Ready loop writes), as with MemoryStorage.
package etcdraft

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/raft"
	"go.etcd.io/etcd/raft/raftpb"

	"walrus/client/go/walrus"
	pb "walrus/proto/walruspb"
)

// LogView serves the raft.Storage reads of the log. Entries, Term,
// FirstIndex and LastIndex have raft.Storage's semantics (ErrCompacted,
// ErrUnavailable); the writes keep it in step with what Save made durable.
type LogView interface {
	Entries(lo, hi, maxSize uint64) ([]raftpb.Entry, error)
	Term(i uint64) (uint64, error)
	FirstIndex() (uint64, error)
	LastIndex() (uint64, error)

	// Append adds entries already durable in walrus; an entry at an index
	// the view holds replaces it and everything after it.
	Append(entries []raftpb.Entry) error
	// ApplySnapshot resets the view to start after snap.
	ApplySnapshot(snap raftpb.Snapshot) error
	// Compact drops entries up to and including index.
	Compact(index uint64) error
}

// Options configure a Storage.
type Options struct {
	// Metadata the WAL is created with (etcd: the member and cluster IDs).
	Metadata []byte
	// PersistSnapshot makes a snapshot received from the leader durable
	// (its data and metadata, e.g. a snapshot file fsynced) before Save
	// records its marker in walrus. Required when the node can receive
	// snapshots: after the marker, the entries before it are gone for good.
	PersistSnapshot func(raftpb.Snapshot) error
	// NewLogView returns a view Open loads with ReadAll (e.g. NewMemoryView);
	// nil: walrusd's ranged reads (NewRemoteView).
	NewLogView func() LogView
	// ReadTimeout bounds each ranged read of the default view, including the
	// time it waits for a restarting walrusd (60 s if 0): past it the read
	// fails, and etcd raft panics.
	ReadTimeout time.Duration
}

// Storage is a raft.Storage on walrus. See the package comment.
type Storage struct {
	client *walrus.Client
	opts   Options

	mu        sync.Mutex
	hardState raftpb.HardState
	snapshot  raftpb.Snapshot // the newest one Save or CreateSnapshot saw
	view      LogView
}

// Open takes over the WAL of client's walrusd and loads it. snap is the
// newest snapshot the application holds durably (empty for a new node); the
// log is read from its marker on.
//
// Order: Fence first, so this Storage is the only writer from here on and
// any older process still holding the log is refused; Create next, because
// Create carries the epoch (a Create with an older one is refused); ReadAll
// last. A NotFound or FailedPrecondition from ReadAll means walrus has no
// marker for snap: the application should retry with an older snapshot it
// holds (a crash may have come between its snapshot file and the marker).
func Open(ctx context.Context, client *walrus.Client, snap raftpb.Snapshot, opts Options) (*Storage, error) {
	if _, err := client.Fence(ctx); err != nil {
		return nil, fmt.Errorf("walrus fence: %w", err)
	}
	if _, err := client.Create(ctx, opts.Metadata); err != nil {
		return nil, fmt.Errorf("walrus create: %w", err)
	}
	s := &Storage{client: client, opts: opts, snapshot: snap}
	if opts.NewLogView == nil {
		timeout := opts.ReadTimeout
		if timeout == 0 {
			timeout = 60 * time.Second
		}
		view := NewRemoteView(client, timeout).(*remoteView)
		st, err := client.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("walrus status: %w", err)
		}
		if err := view.load(ctx, snap); err != nil {
			return nil, fmt.Errorf("walrus log from snapshot %d/%d: %w", snap.Metadata.Index, snap.Metadata.Term, err)
		}
		s.view = view
		s.hardState = HardStateFromWalrus(st.HardState)
		return s, nil
	}
	r, err := client.ReadAll(ctx, snap.Metadata.Index, snap.Metadata.Term)
	if err != nil {
		return nil, fmt.Errorf("walrus read from marker %d/%d: %w", snap.Metadata.Index, snap.Metadata.Term, err)
	}
	s.view = opts.NewLogView()
	if !raft.IsEmptySnap(snap) {
		if err := s.view.ApplySnapshot(snap); err != nil {
			return nil, err
		}
	}
	s.hardState = HardStateFromWalrus(r.HardState)
	if len(r.Entries) > 0 {
		if err := s.view.Append(EntriesFromWalrus(r.Entries)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// InitialState implements raft.Storage.
func (s *Storage) InitialState() (raftpb.HardState, raftpb.ConfState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hardState, s.snapshot.Metadata.ConfState, nil
}

// Entries implements raft.Storage.
func (s *Storage) Entries(lo, hi, maxSize uint64) ([]raftpb.Entry, error) {
	return s.view.Entries(lo, hi, maxSize)
}

// Term implements raft.Storage.
func (s *Storage) Term(i uint64) (uint64, error) { return s.view.Term(i) }

// LastIndex implements raft.Storage.
func (s *Storage) LastIndex() (uint64, error) { return s.view.LastIndex() }

// FirstIndex implements raft.Storage.
func (s *Storage) FirstIndex() (uint64, error) { return s.view.FirstIndex() }

// Snapshot implements raft.Storage: the newest snapshot saved or created.
func (s *Storage) Snapshot() (raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshot, nil
}

// HardState is the hard state last made durable.
func (s *Storage) HardState() raftpb.HardState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hardState
}

// Save persists what rd asks to persist, before the application sends
// rd.Messages or applies rd.CommittedEntries (raft's contract), in this
// order:
//
//  1. a snapshot from the leader: Options.PersistSnapshot (its data), then
//     its marker in walrus. The marker goes before the hard state because
//     that hard state's commit may point at the snapshot's index: with the
//     hard state first, a crash would leave a commit beyond the last entry.
//  2. the hard state and the entries, in one Append (one fsync), so a crash
//     never keeps a vote without the term it was cast in, or entries
//     without the term that wrote them.
//  3. the log view: the snapshot, then the entries (which may replace a
//     tail the leader overruled).
//
// Any error leaves the node's durable state unknown past the last success:
// the node must stop and restart from walrus (Open), not carry on.
func (s *Storage) Save(ctx context.Context, rd raft.Ready) error {
	if !raft.IsEmptySnap(rd.Snapshot) {
		if s.opts.PersistSnapshot == nil {
			return fmt.Errorf("etcdraft: snapshot %d received and no PersistSnapshot", rd.Snapshot.Metadata.Index)
		}
		if err := s.opts.PersistSnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("persist snapshot %d: %w", rd.Snapshot.Metadata.Index, err)
		}
		if err := s.client.SaveSnapshot(ctx, rd.Snapshot.Metadata.Index, rd.Snapshot.Metadata.Term); err != nil {
			return fmt.Errorf("walrus snapshot marker %d/%d: %w",
				rd.Snapshot.Metadata.Index, rd.Snapshot.Metadata.Term, err)
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) || len(rd.Entries) > 0 {
		var hs *pb.HardState
		if !raft.IsEmptyHardState(rd.HardState) {
			hs = HardStateToWalrus(rd.HardState)
		}
		if _, err := s.client.Append(ctx, hs, EntriesToWalrus(rd.Entries)); err != nil {
			return fmt.Errorf("walrus append: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := s.view.ApplySnapshot(rd.Snapshot); err != nil {
			return err
		}
		s.snapshot = rd.Snapshot
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		s.hardState = rd.HardState
	}
	if len(rd.Entries) > 0 {
		return s.view.Append(rd.Entries)
	}
	return nil
}

// CreateSnapshot records a snapshot the application took at index (applied
// and durable in its own files, data included): the marker in walrus, then
// the snapshot raft sends to lagging followers. Compact is a separate step.
func (s *Storage) CreateSnapshot(ctx context.Context, index uint64, cs *raftpb.ConfState, data []byte) (raftpb.Snapshot, error) {
	term, err := s.view.Term(index)
	if err != nil {
		return raftpb.Snapshot{}, err
	}
	if err := s.client.SaveSnapshot(ctx, index, term); err != nil {
		return raftpb.Snapshot{}, fmt.Errorf("walrus snapshot marker %d/%d: %w", index, term, err)
	}
	snap := raftpb.Snapshot{Data: data, Metadata: raftpb.SnapshotMetadata{Index: index, Term: term}}
	if cs != nil {
		snap.Metadata.ConfState = *cs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if index > s.snapshot.Metadata.Index {
		s.snapshot = snap
	}
	return snap, nil
}

// Compact drops entries up to index from the view and releases the walrus
// segments wholly before the one holding releaseTo, so walrusd may purge
// them. releaseTo must be the index of a snapshot the application keeps
// (and so may restart from): entries before its marker are never read
// again, and the marker itself lies in or after the segment holding it.
func (s *Storage) Compact(ctx context.Context, index, releaseTo uint64) error {
	if err := s.view.Compact(index); err != nil && err != raft.ErrCompacted {
		return err
	}
	if _, err := s.client.ReleaseTo(ctx, releaseTo); err != nil {
		return fmt.Errorf("walrus release to %d: %w", releaseTo, err)
	}
	return nil
}
