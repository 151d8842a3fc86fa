package main

import (
	"bytes"
	"fmt"
	"io/ioutil"
	"log"
	"os"
	"sync"

	"go.etcd.io/etcd/raft"
	"go.etcd.io/etcd/raft/raftpb"

	"walrus/tests/raft/internal/check"
)

var quietLogger = &raft.DefaultLogger{Logger: log.New(ioutil.Discard, "", 0)}

// cluster is what the nodes share: the in-memory transport, and the
// observations the checks run on (the committed history, each node's last
// durable hard state, the applied proposals).
type cluster struct {
	nodes []*node

	mu          sync.Mutex
	history     map[uint64]raftpb.Entry // index -> the entry first applied there
	lastApplied map[uint64]uint64       // node -> index
	hardStates  map[uint64]raftpb.HardState
	appliedIDs  map[uint64]bool
	waiters     map[uint64]chan struct{}
	violations  []string
	stats       check.Counters
}

func newCluster() *cluster {
	return &cluster{
		history:     map[uint64]raftpb.Entry{},
		lastApplied: map[uint64]uint64{},
		hardStates:  map[uint64]raftpb.HardState{},
		appliedIDs:  map[uint64]bool{},
		waiters:     map[uint64]chan struct{}{},
	}
}

func (c *cluster) peers() []raft.Peer {
	var p []raft.Peer
	for _, n := range c.nodes {
		p = append(p, raft.Peer{ID: n.id})
	}
	return p
}

func (c *cluster) note(format string, args ...interface{}) {
	log.Printf(format, args...)
}

func (c *cluster) violation(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	log.Printf("VIOLATION: %s", msg)
	c.mu.Lock()
	c.violations = append(c.violations, msg)
	c.mu.Unlock()
}

// violationOnce records a violation unless the same one was recorded.
func (c *cluster) violationOnce(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	c.mu.Lock()
	for _, v := range c.violations {
		if v == msg {
			c.mu.Unlock()
			return
		}
	}
	c.mu.Unlock()
	c.violation("%s", msg)
}

// send delivers messages between nodes; one for a node that is down, or whose
// inbox is full, is dropped, as a network would, and reported to raft.
func (c *cluster) send(from raft.Node, msgs []raftpb.Message) {
	for _, m := range msgs {
		ok := m.To >= 1 && int(m.To) <= len(c.nodes) && c.nodes[m.To-1].deliver(m)
		if m.Type == raftpb.MsgSnap {
			status := raft.SnapshotFinish
			if !ok {
				status = raft.SnapshotFailure
			}
			go from.ReportSnapshot(m.To, status)
		}
		if !ok {
			go from.ReportUnreachable(m.To)
		}
	}
}

// persisted records a hard state Save made durable.
func (c *cluster) persisted(id uint64, hs raftpb.HardState) {
	c.mu.Lock()
	c.hardStates[id] = hs
	c.mu.Unlock()
}

// applied records an entry a node applied: the first node to apply an index
// fixes it in the history; any other entry there is a safety violation.
func (c *cluster) applied(id uint64, e raftpb.Entry) {
	c.mu.Lock()
	h, seen := c.history[e.Index]
	if !seen {
		c.history[e.Index] = e
	}
	c.lastApplied[id] = e.Index
	var opID uint64
	if e.Type == raftpb.EntryNormal && len(e.Data) > 0 {
		if op, err := decodeOp(e.Data); err == nil {
			opID = op.ID
			c.appliedIDs[op.ID] = true
		}
	}
	if w, ok := c.waiters[opID]; ok && opID != 0 {
		close(w)
		delete(c.waiters, opID)
	}
	c.mu.Unlock()
	if seen && (h.Term != e.Term || !bytes.Equal(h.Data, e.Data)) {
		c.violation("node %d applied index %d term %d, but term %d was applied there before",
			id, e.Index, e.Term, h.Term)
	}
}

// checkRestart compares what a node loaded from walrus with what it had made
// durable before: its vote and term may not go back, nor its commit, and the
// committed entries it holds must be the ones the cluster applied.
func (c *cluster) checkRestart(id uint64, hs raftpb.HardState, snap raftpb.Snapshot, last uint64, ents []raftpb.Entry) {
	c.mu.Lock()
	prev, had := c.hardStates[id]
	c.hardStates[id] = hs
	c.mu.Unlock()
	c.stats.Add("node starts", 1)
	if had {
		if hs.Term < prev.Term {
			c.violation("node %d restarted with term %d < %d it had saved", id, hs.Term, prev.Term)
		}
		if hs.Term == prev.Term && prev.Vote != 0 && hs.Vote != prev.Vote {
			c.violation("node %d restarted with vote %d in term %d, it had saved vote %d",
				id, hs.Vote, hs.Term, prev.Vote)
		}
		if hs.Commit < prev.Commit {
			c.violation("node %d restarted with commit %d < %d it had saved", id, hs.Commit, prev.Commit)
		}
		top := last
		if snap.Metadata.Index > top {
			top = snap.Metadata.Index
		}
		if top < prev.Commit {
			c.violation("node %d restarted holding entries up to %d, below its saved commit %d",
				id, top, prev.Commit)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range ents {
		if e.Index > hs.Commit {
			break
		}
		if h, ok := c.history[e.Index]; ok && (h.Term != e.Term || !bytes.Equal(h.Data, e.Data)) {
			c.violations = append(c.violations, fmt.Sprintf(
				"node %d restarted with committed entry %d term %d, the cluster applied term %d",
				id, e.Index, e.Term, h.Term))
		}
	}
}

func (c *cluster) waiter(id uint64) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := make(chan struct{})
	if c.appliedIDs[id] {
		close(w)
	} else {
		c.waiters[id] = w
	}
	return w
}

func (c *cluster) dropWaiter(id uint64) {
	c.mu.Lock()
	delete(c.waiters, id)
	c.mu.Unlock()
}

func (c *cluster) appliedIndex(id uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastApplied[id]
}

// replay is the key-value state the history leads to up to index.
func (c *cluster) replay(upTo uint64) (map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kv := map[string]string{}
	for i := uint64(1); i <= upTo; i++ {
		e, ok := c.history[i]
		if !ok {
			return nil, fmt.Errorf("no node applied index %d", i)
		}
		if e.Type == raftpb.EntryNormal && len(e.Data) > 0 {
			op, err := decodeOp(e.Data)
			if err != nil {
				return nil, err
			}
			kv[op.Key] = op.Value
		}
	}
	return kv, nil
}

func fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "etcdcluster: "+format+"\n", args...)
	os.Exit(2)
}
