// Command etcdcluster runs a 3-node etcd raft cluster, each node keeping its
// log in its own walrusd (a Unix socket, small segments, released segments
// purged at once), under a key-value workload with snapshots and compaction
// while walrusd processes are killed with -9 and restarted and nodes are
// restarted from what they persisted. Then it checks:
//
//   - every acknowledged write is applied on every node, and the three state
//     machines equal the replay of the committed history;
//   - no two nodes applied different entries at one index;
//   - no node came back with a lower term, another vote in the same term, a
//     lower commit, or committed entries other than the cluster's;
//   - each node's walrus directory reads with etcd's own wal package from the
//     node's snapshot marker exactly as walrusd serves it.
//
// usage: etcdcluster --walrusd PATH --dir SCRATCH [--seconds N] [--seed S]
//
// WALRUS_RAFT_SECONDS sets the default duration (20 s). Exit status 0 when
// every check passed, 1 when one failed, 2 on setup errors.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/raft/raftpb"

	"walrus/tests/raft/internal/check"
	"walrus/tests/raft/internal/daemon"
)

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
		fatalf("usage: etcdcluster --walrusd PATH --dir SCRATCH [--seconds N] [--seed S]")
	}
	log.SetFlags(0) // etcd's logging package already stamps the time
	log.Printf("etcdcluster: %d s, seed %d, segments of %d bytes", seconds, *seed, *segment)
	os.RemoveAll(*dir)

	c := newCluster()
	for i := uint64(1); i <= 3; i++ {
		nd := filepath.Join(*dir, fmt.Sprintf("node%d", i))
		c.nodes = append(c.nodes, &node{
			id: i, c: c,
			d:     &daemon.Walrusd{Binary: *binary, Dir: filepath.Join(nd, "walrus"), Args: daemon.ClusterArgs(*segment)},
			snaps: &snapFiles{dir: filepath.Join(nd, "snap"), keep: 2},
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
			fatalf("start node %d: %v", n.id, err)
		}
	}

	rng := rand.New(rand.NewSource(*seed))
	acked := runFaultyPhase(c, rng, time.Duration(seconds)*time.Second)
	failed := settleAndCheck(c, acked)
	log.Printf("figures:\n%s", c.stats.String())
	if failed > 0 {
		fmt.Printf("etcdcluster: FAILED (%d problems)\n", failed)
		os.Exit(1)
	}
	fmt.Println("etcdcluster: passed")
}

// runFaultyPhase runs the workload and the faults for d; it returns the IDs
// of the acknowledged writes.
func runFaultyPhase(c *cluster, rng *rand.Rand, d time.Duration) map[uint64]bool {
	deadline := time.Now().Add(d)
	var nextID uint64
	var mu sync.Mutex
	acked := map[uint64]bool{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(w) + 1))
			for time.Now().Before(deadline) {
				id := atomic.AddUint64(&nextID, 1)
				if proposeAndWait(c, c.nodes[r.Intn(len(c.nodes))], id, 3*time.Second) {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				} else {
					time.Sleep(50 * time.Millisecond) // pace retries while there is no leader
				}
			}
		}(w)
	}
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(300+rng.Intn(900)) * time.Millisecond)
		reviveCrashed(c)
		n := c.nodes[rng.Intn(len(c.nodes))]
		switch rng.Intn(3) {
		case 0: // walrusd dies under the node; the node's calls retry
			n.d.Kill()
			c.stats.Add("walrusd kill -9", 1)
			time.Sleep(time.Duration(rng.Intn(400)) * time.Millisecond)
			startDaemon(c, n)
		case 1: // the node restarts; its walrusd stays
			n.halt()
			c.stats.Add("node restarts", 1)
			startNode(c, n)
		case 2: // both: the machine crashed
			n.halt()
			n.d.Kill()
			c.stats.Add("node + walrusd crashes", 1)
			startDaemon(c, n)
			startNode(c, n)
		}
	}
	wg.Wait()
	return acked
}

func proposeAndWait(c *cluster, n *node, id uint64, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w := c.waiter(id)
	defer c.dropWaiter(id)
	op := kvOp{ID: id, Key: fmt.Sprintf("k%03d", id%200), Value: strconv.FormatUint(id, 10)}
	if err := n.propose(ctx, encodeOp(op)); err != nil {
		return false
	}
	select {
	case <-w:
		c.stats.Add("writes acknowledged", 1)
		return true
	case <-ctx.Done():
		c.stats.Add("writes not acknowledged (timeout)", 1)
		return false
	}
}

func startDaemon(c *cluster, n *node) {
	n.d.Reap()
	if err := n.d.Start(); err != nil {
		c.note("node %d: walrusd start: %v", n.id, err)
	}
}

// startNode starts a node; a start refused by walrusd is a finding, reported
// with the daemon's message, and retried by reviveCrashed.
func startNode(c *cluster, n *node) {
	if err := n.start(); err != nil {
		c.stats.Add("node start failures", 1)
		c.note("node %d: start failed: %v; walrusd log tail:\n%s", n.id, err, n.d.LogTail(600))
	}
}

// reviveCrashed restarts walrusd processes that exited by themselves and
// nodes that stopped (a Save error ends a node: its durable state is unknown
// past the last success, so it restarts from walrus).
func reviveCrashed(c *cluster) {
	for _, n := range c.nodes {
		if n.d.Reap() {
			// walrusd stops by itself only when it refuses to run on its
			// directory: a finding, whatever the cluster does next.
			c.stats.Add("walrusd exited by itself", 1)
			c.violationOnce("node %d: walrusd exited by itself: %s", n.id, n.d.ExitReason())
		}
		if !n.d.Running() {
			startDaemon(c, n)
		}
		if !n.isUp() {
			if n.exitErr != nil {
				c.stats.Add("node stopped by an error", 1)
				n.exitErr = nil
			}
			startNode(c, n)
		}
	}
}

// settleAndCheck brings every node up, writes a last value through the
// cluster, waits until all nodes applied it, and runs the checks. It returns
// the number of failed checks.
func settleAndCheck(c *cluster, acked map[uint64]bool) int {
	failed := 0
	fail := func(format string, args ...interface{}) {
		failed++
		log.Printf("FAIL: "+format, args...)
	}
	deadline := time.Now().Add(60 * time.Second)
	const barrier = ^uint64(0) >> 1
	for !proposeAndWait(c, c.nodes[0], barrier, 3*time.Second) {
		if time.Now().After(deadline) {
			fail("the cluster did not commit a write within 60 s after the faults stopped")
			return failed
		}
		reviveCrashed(c)
		time.Sleep(100 * time.Millisecond)
	}
	c.mu.Lock()
	var top uint64
	for i, e := range c.history {
		if op, err := decodeOp(e.Data); err == nil && op.ID == barrier && e.Type == raftpb.EntryNormal {
			top = i
		}
	}
	c.mu.Unlock()
	for _, n := range c.nodes {
		for c.appliedIndex(n.id) < top && time.Now().Before(deadline) {
			reviveCrashed(c)
			time.Sleep(50 * time.Millisecond)
		}
		if got := c.appliedIndex(n.id); got < top {
			fail("node %d applied up to %d, not the final write at %d", n.id, got, top)
		}
	}
	for _, n := range c.nodes {
		n.halt()
	}
	want, err := c.replay(top)
	if err != nil {
		fail("replaying the history: %v", err)
	}
	for _, n := range c.nodes {
		if n.applied < top {
			continue
		}
		// A node may have applied the empty entry of a later election past
		// the barrier; none changes the key-value state.
		if want != nil && !reflect.DeepEqual(n.kv, want) {
			fail("node %d's state machine (%d keys) differs from the replayed history (%d keys)",
				n.id, len(n.kv), len(want))
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
		fail("%d acknowledged writes are not in the committed history", missing)
	}
	for _, v := range violations {
		fail("%s", v)
	}
	log.Printf("%d writes acknowledged; final index %d", len(acked), top)
	for _, n := range c.nodes {
		if err := checkWithEtcdReader(n); err != nil {
			fail("node %d: %v", n.id, err)
		}
	}
	return failed
}

// checkWithEtcdReader reads the node's directory with etcd's wal package
// from the node's newest snapshot marker.
func checkWithEtcdReader(n *node) error {
	var index, term uint64
	if s, err := n.storage.Snapshot(); err == nil {
		index, term = s.Metadata.Index, s.Metadata.Term
	}
	summary, err := check.EtcdReaderAgrees(n.d, index, term)
	if err == nil {
		log.Printf("node %d: %s", n.id, summary)
	}
	return err
}
