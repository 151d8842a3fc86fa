// latency measures what keeping an etcd raft node's log in walrus costs: a
// 3-node etcd raft cluster in one process (an in-memory transport), each
// node's log either in etcd's own wal package in this process (etcdwal), or
// in a walrusd of its own reached over a Unix socket (uds) or loopback TCP
// (tcp) through etcdraft.Storage, reading the log from a copy in memory
// (-mem) or with walrusd's ranged reads. For each: the commit latency of one
// proposal at a time (propose on the leader until the leader applies it)
// and the throughput with many proposals in flight.
//
// usage: latency --walrusd BIN --dir DIR [--proposals N] [--inflight N] [--seconds S] [--modes etcdwal,uds-mem,tcp-mem,uds,tcp]
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/raft"
	"go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/wal"
	"go.uber.org/zap"

	"walrus/client/go/etcdraft"
	"walrus/client/go/walrus"
	"walrus/tests/raft/internal/daemon"
)

var quietLogger = &raft.DefaultLogger{Logger: log.New(ioutil.Discard, "", 0)}

// store is a node's durable log: raft's Storage and the Ready's Save.
type store interface {
	raft.Storage
	Save(rd raft.Ready) error
	Close()
}

type etcdWAL struct {
	*raft.MemoryStorage
	w *wal.WAL
}

func (s *etcdWAL) Save(rd raft.Ready) error {
	if err := s.w.Save(rd.HardState, rd.Entries); err != nil {
		return err
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		s.SetHardState(rd.HardState)
	}
	return s.Append(rd.Entries)
}

func (s *etcdWAL) Close() { s.w.Close() }

type walrusStore struct {
	*etcdraft.Storage
	client *walrus.Client
	d      *daemon.Walrusd
}

func (s *walrusStore) Save(rd raft.Ready) error { return s.Storage.Save(context.Background(), rd) }

func (s *walrusStore) Close() {
	s.client.Close()
	s.d.Stop()
}

type node struct {
	id    uint64
	rn    raft.Node
	st    store
	inbox chan raftpb.Message
}

type cluster struct {
	nodes   []*node
	lead    uint64 // atomic: the node that last said it leads
	mu      sync.Mutex
	waiters map[uint64]chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newStore(mode, binary, dir string, id uint64) (store, error) {
	if mode == "etcdwal" {
		w, err := wal.Create(zap.NewNop(), filepath.Join(dir, fmt.Sprintf("node%d-wal", id)), nil)
		if err != nil {
			return nil, err
		}
		return &etcdWAL{MemoryStorage: raft.NewMemoryStorage(), w: w}, nil
	}
	d := &daemon.Walrusd{Binary: binary, Dir: filepath.Join(dir, fmt.Sprintf("node%d-walrus", id))}
	target := d.Target()
	if strings.HasPrefix(mode, "tcp") {
		target = fmt.Sprintf("127.0.0.1:%d", freePort())
		d.Args = []string{"--listen", target}
	}
	if err := d.Start(); err != nil {
		return nil, err
	}
	c, err := walrus.Dial(target, walrus.Options{})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := etcdraft.Options{Metadata: []byte("latency")}
	if strings.HasSuffix(mode, "-mem") {
		opts.NewLogView = etcdraft.NewMemoryView
	}
	s, err := etcdraft.Open(ctx, c, raftpb.Snapshot{}, opts)
	if err != nil {
		return nil, err
	}
	return &walrusStore{Storage: s, client: c, d: d}, nil
}

func (c *cluster) run(n *node) {
	defer c.wg.Done()
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-ticker.C:
			n.rn.Tick()
		case m := <-n.inbox:
			n.rn.Step(context.Background(), m)
		case rd := <-n.rn.Ready():
			if rd.SoftState != nil && rd.SoftState.RaftState == raft.StateLeader {
				atomic.StoreUint64(&c.lead, n.id)
			}
			if err := n.st.Save(rd); err != nil {
				log.Fatalf("node %d: save: %v", n.id, err)
			}
			for _, m := range rd.Messages {
				select {
				case c.nodes[m.To-1].inbox <- m:
				default: // a full inbox drops the message, as a network would
				}
			}
			for _, e := range rd.CommittedEntries {
				if e.Type == raftpb.EntryConfChange {
					var cc raftpb.ConfChange
					cc.Unmarshal(e.Data)
					n.rn.ApplyConfChange(cc)
					continue
				}
				if len(e.Data) == 8 {
					c.applied(n.id, binary.BigEndian.Uint64(e.Data))
				}
			}
			n.rn.Advance()
		}
	}
}

func (c *cluster) applied(node, id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.waiters[id]; ok && node == c.leader() {
		close(w)
		delete(c.waiters, id)
	}
}

// leader is the node that last said it leads.
func (c *cluster) leader() uint64 { return atomic.LoadUint64(&c.lead) }

// propose waits until the leader applied proposal id.
func (c *cluster) propose(id uint64) (time.Duration, error) {
	done := make(chan struct{})
	c.mu.Lock()
	c.waiters[id] = done
	c.mu.Unlock()
	data := make([]byte, 8)
	binary.BigEndian.PutUint64(data, id)
	start := time.Now()
	lead := c.leader()
	if lead == 0 {
		return 0, fmt.Errorf("no leader")
	}
	if err := c.nodes[lead-1].rn.Propose(context.Background(), data); err != nil {
		return 0, err
	}
	select {
	case <-done:
		return time.Since(start), nil
	case <-time.After(10 * time.Second):
		return 0, fmt.Errorf("proposal %d not applied in 10 s", id)
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999)
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func measure(mode, binary, dir string, proposals, inflight int, seconds float64) error {
	c := &cluster{waiters: map[uint64]chan struct{}{}, stop: make(chan struct{})}
	peers := []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	for id := uint64(1); id <= 3; id++ {
		st, err := newStore(mode, binary, dir, id)
		if err != nil {
			return fmt.Errorf("%s node %d: %v", mode, id, err)
		}
		defer st.Close()
		// Elections only if a node is gone for a second: none in a healthy run.
		cfg := &raft.Config{ID: id, ElectionTick: 100, HeartbeatTick: 1, Storage: st,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, Logger: quietLogger}
		c.nodes = append(c.nodes, &node{id: id, rn: raft.StartNode(cfg, peers), st: st,
			inbox: make(chan raftpb.Message, 4096)})
	}
	for _, n := range c.nodes {
		c.wg.Add(1)
		go c.run(n)
	}
	defer func() {
		close(c.stop)
		c.wg.Wait()
		for _, n := range c.nodes {
			n.rn.Stop()
		}
	}()
	c.nodes[0].rn.Campaign(context.Background())
	for c.leader() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	var id uint64
	// Warm up, then one proposal at a time.
	for i := 0; i < 50; i++ {
		id++
		if _, err := c.propose(id); err != nil {
			return err
		}
	}
	lat := make([]time.Duration, 0, proposals)
	for i := 0; i < proposals; i++ {
		id++
		d, err := c.propose(id)
		if err != nil {
			return err
		}
		lat = append(lat, d)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	// Many in flight: `inflight` goroutines proposing back to back.
	var done, lost int64
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	var wg sync.WaitGroup
	next := id
	for g := 0; g < inflight; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				my := atomic.AddUint64(&next, 1)
				if _, err := c.propose(my); err != nil {
					atomic.AddInt64(&lost, 1) // dropped by the transport or a leader change
					continue
				}
				atomic.AddInt64(&done, 1)
			}
		}()
	}
	began := time.Now()
	wg.Wait()
	elapsed := time.Since(began).Seconds()
	fmt.Printf("%-8s commit latency (1 in flight, %d proposals): p50 %.3f ms  p99 %.3f ms  |  %d in flight: %.0f commits/s (%d lost)\n",
		mode, proposals, float64(percentile(lat, 50).Microseconds())/1000,
		float64(percentile(lat, 99).Microseconds())/1000, inflight, float64(done)/elapsed, lost)
	return nil
}

func main() {
	binary := flag.String("walrusd", "", "walrusd binary")
	dir := flag.String("dir", "", "scratch directory (emptied)")
	proposals := flag.Int("proposals", 2000, "proposals measured one at a time")
	inflight := flag.Int("inflight", 64, "proposals in flight for the throughput")
	seconds := flag.Float64("seconds", 10, "length of the throughput phase")
	modes := flag.String("modes", "etcdwal,uds-mem,tcp-mem,uds,tcp", "which logs to measure (-mem: etcdraft's memory view; without: its ranged-read view)")
	flag.Parse()
	if *binary == "" || *dir == "" {
		log.Fatal("usage: latency --walrusd BIN --dir DIR")
	}
	for _, mode := range strings.Split(*modes, ",") {
		d := filepath.Join(*dir, mode)
		os.RemoveAll(d)
		if err := os.MkdirAll(d, 0o755); err != nil {
			log.Fatal(err)
		}
		if err := measure(mode, *binary, d, *proposals, *inflight, *seconds); err != nil {
			log.Fatalf("%s: %v", mode, err)
		}
		os.RemoveAll(d)
	}
}
