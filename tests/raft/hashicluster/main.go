// Command hashicluster runs a 3-server hashicorp raft cluster, each server
// keeping its log, term and vote in its own walrusd (hashiraft.Store over a
// Unix socket, small segments, released segments purged at once), under a
// key-value workload with snapshots and log compaction while walrusd
// processes are killed with -9 and restarted and servers are restarted.
// Then it checks:
//
//   - every acknowledged write is applied on every server, and the three
//     state machines are equal;
//   - no two servers applied different commands at one index;
//   - no server came back with a lower term or another vote in its term;
//   - each server's walrus directory reads with etcd's own wal package from
//     its newest snapshot marker exactly as walrusd serves it.
//
// usage: hashicluster --walrusd PATH --dir SCRATCH [--seconds N] [--seed S]
//
// WALRUS_RAFT_SECONDS sets the default duration (20 s). Exit status 0 when
// every check passed, 1 when one failed, 2 on setup errors.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"walrus/client/go/walrus"
	"walrus/tests/raft/internal/check"
	"walrus/tests/raft/internal/daemon"
)

type cluster struct {
	nodes []*node
	stats check.Counters

	mu         sync.Mutex
	history    map[uint64]raft.Log // index -> the command first applied there
	appliedIDs map[uint64]bool
	terms      map[string]uint64 // last durable term per server
	votes      map[string]string // last durable vote, in that term
	violations []string
}

func main() {
	seconds := 20
	if s := os.Getenv("WALRUS_RAFT_SECONDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			fatalf("WALRUS_RAFT_SECONDS: %v", err)
		}
		seconds = v
	}
	binary := flag.String("walrusd", "", "walrusd binary")
	dir := flag.String("dir", "", "scratch directory (emptied)")
	flag.IntVar(&seconds, "seconds", seconds, "duration of the faulty phase")
	seed := flag.Int64("seed", time.Now().UnixNano(), "random seed of the fault schedule")
	segment := flag.Int("segment-size-bytes", 16384, "walrusd --segment-size-bytes")
	flag.Parse()
	if *binary == "" || *dir == "" {
		fatalf("usage: hashicluster --walrusd PATH --dir SCRATCH [--seconds N] [--seed S]")
	}
	log.SetFlags(0) // etcd's logging package, linked for its wal reader, stamps the time
	log.Printf("hashicluster: %d s, seed %d, segments of %d bytes", seconds, *seed, *segment)
	os.RemoveAll(*dir)

	c := &cluster{history: map[uint64]raft.Log{}, appliedIDs: map[uint64]bool{},
		terms: map[string]uint64{}, votes: map[string]string{}}
	ports, err := freePorts(3)
	if err != nil {
		fatalf("free ports: %v", err)
	}
	for i := 1; i <= 3; i++ {
		nd := filepath.Join(*dir, fmt.Sprintf("node%d", i))
		c.nodes = append(c.nodes, &node{
			id: strconv.Itoa(i), addr: raft.ServerAddress(fmt.Sprintf("127.0.0.1:%d", ports[i-1])), c: c, dir: nd,
			d: &daemon.Walrusd{Binary: *binary, Dir: filepath.Join(nd, "walrus"), Args: daemon.ClusterArgs(*segment)},
		})
	}
	defer func() {
		for _, n := range c.nodes {
			n.halt()
			n.d.Kill()
		}
	}()
	for _, n := range c.nodes {
		if err := n.d.Start(); err != nil {
			fatalf("start walrusd: %v", err)
		}
	}
	for _, n := range c.nodes {
		if err := n.start(); err != nil {
			fatalf("start server %s: %v", n.id, err)
		}
	}
	rng := rand.New(rand.NewSource(*seed))
	acked := c.runFaultyPhase(rng, time.Duration(seconds)*time.Second)
	failed := c.settleAndCheck(acked)
	log.Printf("figures:\n%s", c.stats.String())
	if failed > 0 {
		fmt.Printf("hashicluster: FAILED (%d problems)\n", failed)
		os.Exit(1)
	}
	fmt.Println("hashicluster: passed")
}

func fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "hashicluster: "+format+"\n", args...)
	os.Exit(2)
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

func (c *cluster) voters() map[string]uint64 {
	m := map[string]uint64{}
	for i, n := range c.nodes {
		m[string(n.addr)] = uint64(i + 1)
	}
	return m
}

func (c *cluster) configuration() raft.Configuration {
	var conf raft.Configuration
	for _, n := range c.nodes {
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(n.id), Address: n.addr})
	}
	return conf
}

func (c *cluster) persistedTerm(id string, term uint64) {
	c.mu.Lock()
	if term != c.terms[id] {
		delete(c.votes, id)
	}
	c.terms[id] = term
	c.mu.Unlock()
}

func (c *cluster) persistedVote(id string, term uint64, cand string) {
	c.mu.Lock()
	c.terms[id], c.votes[id] = term, cand
	c.mu.Unlock()
}

// checkRestart compares the term and vote a server loaded with the last it
// made durable.
func (c *cluster) checkRestart(id string, s *observedStore) {
	c.stats.Add("server starts", 1)
	term, _ := s.Store.GetUint64([]byte("CurrentTerm"))
	cand, _ := s.Store.Get([]byte("LastVoteCand"))
	c.mu.Lock()
	prevTerm, prevVote := c.terms[id], c.votes[id]
	c.mu.Unlock()
	if term < prevTerm {
		c.violation("server %s restarted with term %d < %d it had saved", id, term, prevTerm)
	}
	if term == prevTerm && prevVote != "" && string(cand) != prevVote {
		c.violation("server %s restarted with vote %q in term %d, it had saved %q", id, cand, term, prevVote)
	}
}

func (c *cluster) applied(id string, l *raft.Log, opID uint64) {
	c.mu.Lock()
	h, seen := c.history[l.Index]
	if !seen {
		c.history[l.Index] = raft.Log{Index: l.Index, Term: l.Term, Data: append([]byte(nil), l.Data...)}
	}
	c.appliedIDs[opID] = true
	c.mu.Unlock()
	if seen && (h.Term != l.Term || !bytes.Equal(h.Data, l.Data)) {
		c.violation("server %s applied index %d term %d, but term %d was applied there before",
			id, l.Index, l.Term, h.Term)
	}
}

func (c *cluster) leader() *node {
	for _, n := range c.nodes {
		if r := n.raft(); r != nil && r.State() == raft.Leader {
			return n
		}
	}
	return nil
}

func (c *cluster) write(id uint64, key string) bool {
	n := c.leader()
	if n == nil {
		return false
	}
	b, _ := json.Marshal(kvOp{ID: id, Key: key, Value: strconv.FormatUint(id, 10)})
	r := n.raft()
	if r == nil {
		c.stats.Add("writes not acknowledged", 1)
		return false
	}
	// The timeout of Apply bounds only its enqueueing. A future taken by an
	// instance that is then halted and abandoned (its Shutdown hung, its
	// store dead) is never answered, so the wait for the answer is bounded
	// too, as any client's is: such a write is not acknowledged.
	future := r.Apply(b, 3*time.Second)
	answered := make(chan error, 1)
	go func() { answered <- future.Error() }()
	select {
	case err := <-answered:
		if err != nil {
			c.stats.Add("writes not acknowledged", 1)
			return false
		}
	case <-time.After(writeAnswerTimeout):
		c.stats.Add("writes never answered (instance abandoned)", 1)
		return false
	}
	c.stats.Add("writes acknowledged", 1)
	return true
}

// writeAnswerTimeout bounds a client's wait for a write's answer.
const writeAnswerTimeout = 30 * time.Second

func (c *cluster) runFaultyPhase(rng *rand.Rand, d time.Duration) map[uint64]bool {
	deadline := time.Now().Add(d)
	var nextID uint64
	var mu sync.Mutex
	acked := map[uint64]bool{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				id := atomic.AddUint64(&nextID, 1)
				if c.write(id, fmt.Sprintf("k%03d", id%200)) {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				} else {
					time.Sleep(50 * time.Millisecond) // pace retries while there is no leader
				}
			}
		}()
	}
	start, lastReport := time.Now(), time.Now()
	for time.Now().Before(deadline) {
		if time.Since(lastReport) >= progressInterval {
			lastReport = time.Now()
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			log.Printf("progress: %d s, %d writes acknowledged", int(time.Since(start).Seconds()), n)
		}
		time.Sleep(time.Duration(300+rng.Intn(900)) * time.Millisecond)
		c.revive()
		n := c.nodes[rng.Intn(len(c.nodes))]
		switch rng.Intn(3) {
		case 0:
			n.d.Kill()
			c.stats.Add("walrusd kill -9", 1)
			time.Sleep(time.Duration(rng.Intn(400)) * time.Millisecond)
			c.startDaemon(n)
		case 1:
			n.halt()
			c.stats.Add("server restarts", 1)
			c.startNode(n)
		case 2:
			n.halt()
			n.d.Kill()
			c.stats.Add("server + walrusd crashes", 1)
			c.startDaemon(n)
			c.startNode(n)
		}
	}
	wg.Wait()
	return acked
}

// progressInterval is how often a long run says it is alive.
const progressInterval = time.Minute

func (c *cluster) startDaemon(n *node) {
	n.d.Reap()
	if err := n.d.Start(); err != nil {
		log.Printf("server %s: walrusd start: %v", n.id, err)
	}
}

func (c *cluster) startNode(n *node) {
	if err := n.start(); err != nil {
		c.stats.Add("server start failures", 1)
		log.Printf("server %s: start failed: %v; walrusd log tail:\n%s", n.id, err, n.d.LogTail(600))
	}
}

func (c *cluster) revive() {
	for _, n := range c.nodes {
		if n.d.Reap() {
			// walrusd stops by itself only when it refuses to run on its
			// directory: a finding, whatever the cluster does next.
			c.stats.Add("walrusd exited by itself", 1)
			c.violationOnce("server %s: walrusd exited by itself: %s", n.id, n.d.ExitReason())
		}
		if !n.d.Running() {
			c.startDaemon(n)
		}
		if !n.up() {
			c.startNode(n)
		}
	}
}

func (c *cluster) settleAndCheck(acked map[uint64]bool) int {
	failed := 0
	fail := func(format string, args ...interface{}) {
		failed++
		log.Printf("FAIL: "+format, args...)
	}
	deadline := time.Now().Add(60 * time.Second)
	const barrier = ^uint64(0) >> 1
	for !c.write(barrier, "barrier") {
		if time.Now().After(deadline) {
			fail("the cluster did not commit a write within 60 s after the faults stopped")
			return failed
		}
		c.revive()
		time.Sleep(100 * time.Millisecond)
	}
	var top uint64
	c.mu.Lock()
	for i, l := range c.history {
		var op kvOp
		if json.Unmarshal(l.Data, &op) == nil && op.ID == barrier {
			top = i
		}
	}
	c.mu.Unlock()
	states := map[string]map[string]string{}
	for _, n := range c.nodes {
		for {
			kv, applied := n.fsm.state()
			if applied >= top || time.Now().After(deadline) {
				states[n.id] = kv
				if applied < top {
					fail("server %s applied up to %d, not the final write at %d", n.id, applied, top)
				}
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, n := range c.nodes[1:] {
		if !reflect.DeepEqual(states[n.id], states[c.nodes[0].id]) {
			fail("server %s's state machine (%d keys) differs from server %s's (%d keys)",
				n.id, len(states[n.id]), c.nodes[0].id, len(states[c.nodes[0].id]))
		}
	}
	c.mu.Lock()
	missing := 0
	for id := range acked {
		if !c.appliedIDs[id] {
			missing++
		}
	}
	violations := c.violations
	c.mu.Unlock()
	if missing > 0 {
		fail("%d acknowledged writes were never applied", missing)
	}
	for _, v := range violations {
		fail("%s", v)
	}
	log.Printf("%d writes acknowledged; final index %d", len(acked), top)
	for _, n := range c.nodes {
		n.halt()
	}
	for _, n := range c.nodes {
		index, term, err := newestMarker(n)
		if err != nil {
			fail("server %s: %v", n.id, err)
			continue
		}
		summary, err := check.EtcdReaderAgrees(n.d, index, term)
		if err != nil {
			fail("server %s: %v", n.id, err)
			continue
		}
		log.Printf("server %s: %s", n.id, summary)
	}
	return failed
}

// newestMarker is the snapshot marker a restarting Store reads from.
func newestMarker(n *node) (uint64, uint64, error) {
	client, err := walrus.Dial(n.d.Target(), walrus.Options{})
	if err != nil {
		return 0, 0, err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := client.Status(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("walrus status: %v", err)
	}
	return st.SnapshotIndex, st.SnapshotTerm, nil
}

// freePorts returns n loopback ports that were free a moment ago: each
// server listens on its own for its whole life, across restarts.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
