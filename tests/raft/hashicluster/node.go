package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/ioutil"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"walrus/client/go/hashiraft"
	"walrus/client/go/walrus"
	"walrus/tests/raft/internal/daemon"
)

// node is one hashicorp raft server on its own walrusd; each start is a new
// incarnation that knows only what walrus, its snapshot files and its side
// file hold.
type node struct {
	id   string
	addr raft.ServerAddress
	c    *cluster
	d    *daemon.Walrusd
	dir  string

	mu     sync.Mutex
	r      *raft.Raft
	trans  *raft.NetworkTransport
	client *walrus.Client
	store  *observedStore
	fsm    *kvFSM
}

// observedStore records every term and vote the node made durable, so the
// next incarnation can be checked against them.
//
// Once its incarnation is halted, its writes never return: hashicorp raft
// answers heartbeats on transport goroutines that can outlive Shutdown, and
// a write from a process that is gone must reach nothing (this one would
// fail against the next incarnation's epoch, and hashicorp raft panics when
// it cannot save its term).
//
// hashicorp raft writes its term from two goroutines (the run loop, and the
// transport's heartbeat handler when a leader of a newer term appears), so
// the StableStore writes and their records are serialized here: the term a
// vote is recorded under is the term it was cast in, not one a concurrent
// SetUint64 raised a moment later. A write that fails in a halted
// incarnation blocks (failed) only after the lock is released, so it never
// holds up the other goroutine's Shutdown.
type observedStore struct {
	*hashiraft.Store
	c      *cluster
	id     string
	dead   chan struct{}
	stable sync.Mutex
}

func (s *observedStore) deadProcess() {
	select {
	case <-s.dead:
		select {} // the process is gone: this call never returns
	default:
	}
}

// failed is a write's error as the process sees it: a call that began
// before the halt and failed after it (the next incarnation fenced it out)
// belongs to a process that is gone, so it never returns either.
func (s *observedStore) failed(err error) error {
	if err != nil {
		s.deadProcess()
	}
	return err
}

func (s *observedStore) StoreLogs(logs []*raft.Log) error {
	s.deadProcess()
	return s.failed(s.Store.StoreLogs(logs))
}

func (s *observedStore) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

func (s *observedStore) DeleteRange(min, max uint64) error {
	s.deadProcess()
	return s.failed(s.Store.DeleteRange(min, max))
}

func (s *observedStore) SetUint64(key []byte, val uint64) error {
	s.deadProcess()
	s.stable.Lock()
	err := s.Store.SetUint64(key, val)
	if err == nil && string(key) == "CurrentTerm" {
		s.c.persistedTerm(s.id, val)
	}
	s.stable.Unlock()
	return s.failed(err)
}

func (s *observedStore) Set(key, val []byte) error {
	s.deadProcess()
	s.stable.Lock()
	err := s.Store.Set(key, val)
	if err == nil && string(key) == "LastVoteCand" {
		term, _ := s.Store.GetUint64([]byte("CurrentTerm"))
		s.c.persistedVote(s.id, term, string(val))
	}
	s.stable.Unlock()
	return s.failed(err)
}

func (n *node) up() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.r != nil
}

func (n *node) raft() *raft.Raft {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.r
}

func (n *node) start() error {
	client, err := walrus.Dial(n.d.Target(), walrus.Options{CallTimeout: 30 * time.Second, MaxAttempts: 40})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := hashiraft.Open(ctx, client, hashiraft.Options{
		Metadata: []byte("hashicluster " + n.id),
		Voters:   n.c.voters(),
		SideFile: filepath.Join(n.dir, "stable.json"),
	})
	if err != nil {
		client.Close()
		return err
	}
	store := &observedStore{Store: st, c: n.c, id: n.id, dead: make(chan struct{})}
	n.c.checkRestart(n.id, store)
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(n.dir, "snap"), 2, ioutil.Discard)
	if err != nil {
		client.Close()
		return err
	}
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(n.id)
	conf.HeartbeatTimeout = 300 * time.Millisecond
	conf.ElectionTimeout = 300 * time.Millisecond
	conf.LeaderLeaseTimeout = 150 * time.Millisecond
	conf.CommitTimeout = 20 * time.Millisecond
	conf.SnapshotInterval = 200 * time.Millisecond
	conf.SnapshotThreshold = 150
	conf.TrailingLogs = 50
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: ioutil.Discard, Level: hclog.Error})
	// Real TCP on loopback: hashicorp's in-memory transport blocks a
	// follower for good when the leader gives up waiting for its answer,
	// which a slow disk (a walrusd restarting) makes routine.
	trans, err := raft.NewTCPTransport(string(n.addr), nil, 3, 5*time.Second, ioutil.Discard)
	if err != nil {
		client.Close()
		return err
	}
	existing, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		trans.Close()
		client.Close()
		return err
	}
	if !existing {
		if err := raft.BootstrapCluster(conf, store, store, snaps, trans, n.c.configuration()); err != nil {
			trans.Close()
			client.Close()
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	fsm := &kvFSM{c: n.c, id: n.id, kv: map[string]string{}}
	r, err := raft.NewRaft(conf, fsm, store, store, snaps, trans)
	if err != nil {
		trans.Close()
		client.Close()
		return err
	}
	n.mu.Lock()
	n.r, n.trans, n.client, n.store, n.fsm = r, trans, client, store, fsm
	n.mu.Unlock()
	return nil
}

// halt shuts the incarnation down (a process restart).
func (n *node) halt() {
	n.mu.Lock()
	r, trans, client, store := n.r, n.trans, n.client, n.store
	n.r = nil
	n.mu.Unlock()
	if r == nil {
		return
	}
	// hashicorp raft 1.1.2's Shutdown can wait forever: a follower
	// installing a snapshot waits for its restore after the FSM goroutine
	// has stopped. Such an instance is abandoned; its store is dead below,
	// so it writes nothing more.
	shutdown := make(chan struct{})
	go func() {
		r.Shutdown().Error()
		close(shutdown)
	}()
	select {
	case <-shutdown:
	case <-time.After(30 * time.Second):
		n.c.stats.Add("hashicorp Shutdown hung (abandoned)", 1)
	}
	close(store.dead)
	trans.Close()
	// A straggling call that got past deadProcess before close finishes on
	// the open connection; it is closed once any such call has timed out.
	time.AfterFunc(2*time.Minute, func() { client.Close() })
}

type kvOp struct {
	ID    uint64
	Key   string
	Value string
}

// kvFSM is the key-value state machine; Apply records each entry in the
// cluster's history.
type kvFSM struct {
	c  *cluster
	id string

	mu      sync.Mutex
	kv      map[string]string
	applied uint64
}

func (f *kvFSM) Apply(l *raft.Log) interface{} {
	var op kvOp
	if err := json.Unmarshal(l.Data, &op); err != nil {
		return err
	}
	f.mu.Lock()
	f.kv[op.Key] = op.Value
	f.applied = l.Index
	f.mu.Unlock()
	f.c.applied(f.id, l, op.ID)
	return nil
}

func (f *kvFSM) state() (map[string]string, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kv := map[string]string{}
	for k, v := range f.kv {
		kv[k] = v
	}
	return kv, f.applied
}

func (f *kvFSM) Snapshot() (raft.FSMSnapshot, error) {
	kv, applied := f.state()
	b, err := json.Marshal(kvSnapshot{KV: kv, Applied: applied})
	return fsmSnapshot(b), err
}

func (f *kvFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var s kvSnapshot
	if err := json.NewDecoder(rc).Decode(&s); err != nil {
		return err
	}
	f.mu.Lock()
	f.kv, f.applied = s.KV, s.Applied
	f.mu.Unlock()
	f.c.stats.Add("snapshots restored", 1)
	return nil
}

type kvSnapshot struct {
	KV      map[string]string
	Applied uint64
}

type fsmSnapshot []byte

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s fsmSnapshot) Release() {}
