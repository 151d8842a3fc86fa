package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/raft"
	"go.etcd.io/etcd/raft/raftpb"
	"google.golang.org/grpc/codes"

	"walrus/client/go/etcdraft"
	"walrus/client/go/walrus"
	"walrus/tests/raft/internal/daemon"
)

const (
	tickInterval = 20 * time.Millisecond
	snapEvery    = 200 // applied entries between snapshots
	keepEntries  = 50  // entries kept behind a snapshot for slow followers
)

// node is one etcd raft member on its own walrusd. Each start is an
// incarnation with nothing in memory but what it loads from walrus and its
// snapshot files, as after a process restart.
type node struct {
	id    uint64
	c     *cluster
	d     *daemon.Walrusd
	snaps *snapFiles

	mu    sync.Mutex // guards up, rn, inbox (read by other nodes' sends)
	up    bool
	rn    raft.Node
	inbox chan raftpb.Message

	// The incarnation's own; read by others only after it stopped.
	client    *walrus.Client
	storage   *etcdraft.Storage
	stop      chan struct{}
	done      chan struct{}
	kv        map[string]string
	applied   uint64
	confState raftpb.ConfState
	snapIndex uint64 // newest snapshot this incarnation took or received
	exitErr   error  // why the incarnation stopped by itself
}

// start loads the node from walrus and its snapshots and runs it.
func (n *node) start() error {
	client, err := walrus.Dial(n.d.Target(), walrus.Options{CallTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	snaps, err := n.snaps.newestFirst()
	if err != nil {
		client.Close()
		return err
	}
	opts := etcdraft.Options{Metadata: []byte(fmt.Sprintf("etcdcluster node %d", n.id)), PersistSnapshot: n.snaps.save}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var storage *etcdraft.Storage
	var snap raftpb.Snapshot
	for _, s := range append(snaps, raftpb.Snapshot{}) {
		storage, err = etcdraft.Open(ctx, client, s, opts)
		code := walrus.Code(err)
		if err == nil || s.Metadata.Index == 0 || (code != codes.NotFound && code != codes.FailedPrecondition) {
			snap = s
			break
		}
		n.c.note("node %d: no walrus marker for snapshot %d/%d (%v), trying an older one",
			n.id, s.Metadata.Index, s.Metadata.Term, err)
	}
	if err != nil {
		client.Close()
		return err
	}
	hs := storage.HardState()
	first, _ := storage.FirstIndex()
	last, _ := storage.LastIndex()
	// Ranged reads answer in bounded pieces: read until the last index.
	var ents []raftpb.Entry
	for next := first; next <= last; {
		got, err := storage.Entries(next, last+1, 1<<62)
		if err != nil || len(got) == 0 {
			client.Close()
			return fmt.Errorf("entries %d..%d after load (from %d): %v", first, last, next, err)
		}
		ents = append(ents, got...)
		next += uint64(len(got))
	}
	n.c.checkRestart(n.id, hs, snap, last, ents)

	kv := map[string]string{}
	if len(snap.Data) > 0 {
		if err := json.Unmarshal(snap.Data, &kv); err != nil {
			client.Close()
			return fmt.Errorf("snapshot %d data: %v", snap.Metadata.Index, err)
		}
	}
	cfg := &raft.Config{
		ID:              n.id,
		ElectionTick:    20,
		HeartbeatTick:   2,
		Storage:         storage,
		Applied:         snap.Metadata.Index,
		MaxSizePerMsg:   64 << 10,
		MaxInflightMsgs: 64,
		PreVote:         true,
		Logger:          quietLogger,
	}
	var rn raft.Node
	if raft.IsEmptyHardState(hs) && last == 0 && raft.IsEmptySnap(snap) {
		rn = raft.StartNode(cfg, n.c.peers())
	} else {
		rn = raft.RestartNode(cfg)
	}
	n.client, n.storage = client, storage
	n.kv, n.applied, n.confState, n.snapIndex = kv, snap.Metadata.Index, snap.Metadata.ConfState, snap.Metadata.Index
	n.stop, n.done, n.exitErr = make(chan struct{}), make(chan struct{}), nil
	n.mu.Lock()
	n.up, n.rn, n.inbox = true, rn, make(chan raftpb.Message, 4096)
	inbox := n.inbox
	n.mu.Unlock()
	go n.run(rn, inbox)
	return nil
}

// halt stops the incarnation (a node restart) and waits for it.
func (n *node) halt() {
	n.mu.Lock()
	up := n.up
	n.mu.Unlock()
	if !up {
		return
	}
	close(n.stop)
	<-n.done
}

func (n *node) isUp() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.up
}

// deliver hands m to the node if it is up and its inbox has room.
func (n *node) deliver(m raftpb.Message) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.up {
		return false
	}
	select {
	case n.inbox <- m:
		return true
	default:
		return false
	}
}

func (n *node) propose(ctx context.Context, data []byte) error {
	n.mu.Lock()
	rn, up := n.rn, n.up
	n.mu.Unlock()
	if !up {
		return fmt.Errorf("node %d down", n.id)
	}
	return rn.Propose(ctx, data)
}

func (n *node) run(rn raft.Node, inbox chan raftpb.Message) {
	ticker := time.NewTicker(tickInterval)
	defer func() {
		ticker.Stop()
		n.mu.Lock()
		n.up = false
		n.mu.Unlock()
		rn.Stop()
		n.client.Close()
		close(n.done)
	}()
	ctx := context.Background()
	for {
		select {
		case <-n.stop:
			return
		case <-ticker.C:
			rn.Tick()
		case m := <-inbox:
			n.step(ctx, rn, m)
		case rd := <-rn.Ready():
			if err := n.handleReady(ctx, rn, rd); err != nil {
				n.exitErr = err
				n.c.note("node %d stops: %v", n.id, err)
				return
			}
			rn.Advance()
		}
	}
}

// step hands m to raft. A proposal forwarded by a follower waits in Step
// until this node knows a leader, which may be never (it lost the election
// it was about to win): it is dropped after a moment, as a network would.
func (n *node) step(ctx context.Context, rn raft.Node, m raftpb.Message) {
	if m.Type != raftpb.MsgProp {
		rn.Step(ctx, m)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*tickInterval)
	defer cancel()
	if rn.Step(ctx, m) != nil {
		n.c.stats.Add("forwarded proposals dropped", 1)
	}
}

func (n *node) handleReady(ctx context.Context, rn raft.Node, rd raft.Ready) error {
	if err := n.storage.Save(ctx, rd); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		n.c.persisted(n.id, rd.HardState)
	}
	n.c.send(rn, rd.Messages)
	if !raft.IsEmptySnap(rd.Snapshot) {
		kv := map[string]string{}
		if err := json.Unmarshal(rd.Snapshot.Data, &kv); err != nil {
			return fmt.Errorf("snapshot %d data: %v", rd.Snapshot.Metadata.Index, err)
		}
		n.kv, n.applied = kv, rd.Snapshot.Metadata.Index
		n.confState, n.snapIndex = rd.Snapshot.Metadata.ConfState, rd.Snapshot.Metadata.Index
		n.c.stats.Add("snapshots received", 1)
	}
	for _, e := range rd.CommittedEntries {
		if e.Index <= n.applied {
			continue
		}
		switch e.Type {
		case raftpb.EntryNormal:
			if len(e.Data) > 0 {
				op, err := decodeOp(e.Data)
				if err != nil {
					return fmt.Errorf("entry %d: %v", e.Index, err)
				}
				n.kv[op.Key] = op.Value
			}
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				return err
			}
			n.confState = *rn.ApplyConfChange(cc)
		}
		n.applied = e.Index
		n.c.applied(n.id, e)
	}
	if n.applied >= n.snapIndex+snapEvery {
		if err := n.snapshot(ctx); err != nil {
			return err
		}
	}
	return nil
}

// snapshot takes a snapshot at the applied index: the file first, then the
// walrus marker (Storage.CreateSnapshot), then compaction, which releases
// walrus segments up to the previous snapshot only: the node keeps two
// snapshot files and may restart from the older one.
func (n *node) snapshot(ctx context.Context) error {
	data, err := json.Marshal(n.kv)
	if err != nil {
		return err
	}
	term, err := n.storage.Term(n.applied)
	if err != nil {
		return fmt.Errorf("term of %d: %v", n.applied, err)
	}
	snap := raftpb.Snapshot{Data: data, Metadata: raftpb.SnapshotMetadata{
		Index: n.applied, Term: term, ConfState: n.confState}}
	if err := n.snaps.save(snap); err != nil {
		return err
	}
	if _, err := n.storage.CreateSnapshot(ctx, n.applied, &n.confState, data); err != nil {
		return fmt.Errorf("create snapshot: %w", err)
	}
	prev := n.snapIndex
	n.snapIndex = n.applied
	n.c.stats.Add("snapshots taken", 1)
	if prev == 0 || n.applied <= keepEntries {
		return nil
	}
	if err := n.storage.Compact(ctx, n.applied-keepEntries, prev); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	n.c.stats.Add("compactions", 1)
	return nil
}

type kvOp struct {
	ID    uint64
	Key   string
	Value string
}

func encodeOp(op kvOp) []byte {
	b, _ := json.Marshal(op)
	return b
}

func decodeOp(b []byte) (kvOp, error) {
	var op kvOp
	err := json.Unmarshal(b, &op)
	return op, err
}
