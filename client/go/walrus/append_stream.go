package walrus

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/golang/protobuf/proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "walrus/proto/walruspb"
)

// AppendStream is a pipelined AppendStream call: Send without waiting, Recv
// the acknowledgements in order. Not safe for concurrent use, except that
// one goroutine may Send (and CloseSend or Close) while another Recvs.
//
// Coalescing: Send queues the append and a sender goroutine writes the
// queue. Appends that queue up while a message is being written go out
// together as one AppendRequest when they may be merged, which saves the
// gRPC cost of a message per append on both sides. The daemon acknowledges
// the message once; Recv still returns one acknowledgement per append, in
// order, with the append's own sequence number, and last_index is the
// message's: the log's last index after all of its appends. Append B joins
// the message ending with append A only when
//   - A carries no hard state (an append with one ends its message),
//   - both have entries, B's first index follows A's last and B's first term
//     is not below A's last,
//   - both carry the same epoch, and both have entry CRCs or neither does,
//   - the message stays within Options.AppendMessageBytes (counted as the
//     sum of the appends' marshalled sizes, which bounds the message's) and
//     Options.AppendMessageAppends.
//
// With those rules the daemon takes or refuses a merged message exactly when
// it would have taken or refused its appends one by one, with one difference
// in what a refusal covers: nothing of a refused message is written, so every
// one of its appends fails. Options.NoAppendCoalescing sends one message per
// append.
//
// Failure: the daemon ends the stream with an error at the first message it
// refuses; the messages after it are not written. Recv returns the
// acknowledgements of the appends of every message acknowledged before, then
// an *AppendStreamError naming the caller sequences of the first
// unacknowledged message ("appends 5..9 (sent as one message): ..."), with
// the daemon's code (Code and status.Code read it). When the code is
// Canceled, DeadlineExceeded or Unavailable the call broke rather than being
// refused, and those appends may or may not have been written.
//
// A request belongs to the stream once sent: it is marshalled later, by the
// sender goroutine, so the caller must not modify it (or its entries) until
// Recv has returned its acknowledgement or the stream's error.
//
// The sender goroutine ends with CloseSend, Close, the end of the stream's
// context, a failed write, or Recv's error.
type AppendStream struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	stream pb.WAL_AppendStreamClient
	limits mergeLimits
	gate   <-chan struct{} // tests: the sender writes nothing until it closes

	seq uint64 // the last caller sequence handed out; Send's goroutine only

	mu         sync.Mutex
	cond       *sync.Cond // queue, closing, stopped changed
	queue      []queued
	queueBytes int
	closing    bool          // CloseSend called: no more Sends
	stopped    bool          // the sender goroutine has ended
	ended      bool          // Recv saw the stream end: nothing more is taken
	sendErr    error         // what ended the sender before a clean CloseSend
	messages   []wireMessage // written or being written, not yet acknowledged
	wireSeq    uint64        // the last wire sequence used
	wireCount  uint64        // messages written, for tests
	done       chan struct{} // closed when the sender goroutine ends

	// Recv's goroutine only.
	acks    []*pb.AppendResponse
	recvErr error
}

// queueLimitBytes bounds what Send queues ahead of the sender goroutine
// (at least two full messages): past it Send waits, as a stream.Send would
// under gRPC flow control.
const queueLimitBytes = 4 << 20

type queued struct {
	req  *pb.AppendRequest
	seq  uint64
	size int // marshalled size
}

// wireMessage maps a message's wire sequence to the caller sequences it
// carries.
type wireMessage struct {
	seq         uint64
	first, last uint64
}

type mergeLimits struct {
	off      bool
	maxBytes int
	maxCount int // 0: no cap
}

// AppendStreamError is the error Recv returns when the stream ended with
// appends unacknowledged: the appends of the first unacknowledged message,
// caller sequences First..Last, and the error that ended the stream. Its
// gRPC status is Err's code with the sequences prefixed to the message.
type AppendStreamError struct {
	First, Last uint64
	Err         error
}

func (e *AppendStreamError) prefix() string {
	if e.First == e.Last {
		return fmt.Sprintf("append %d", e.First)
	}
	return fmt.Sprintf("appends %d..%d (sent as one message)", e.First, e.Last)
}

func (e *AppendStreamError) Error() string { return e.prefix() + ": " + e.Err.Error() }

// Unwrap returns the error that ended the stream.
func (e *AppendStreamError) Unwrap() error { return e.Err }

// GRPCStatus is Err's status with the caller sequences in its message.
func (e *AppendStreamError) GRPCStatus() *status.Status {
	p := status.Convert(e.Err).Proto()
	p.Message = e.prefix() + ": " + p.Message
	return status.FromProto(p)
}

// OpenAppendStream opens an AppendStream; ctx bounds its whole life.
func (c *Client) OpenAppendStream(ctx context.Context) (*AppendStream, error) {
	return c.openAppendStream(ctx, nil)
}

func (c *Client) openAppendStream(ctx context.Context, gate <-chan struct{}) (*AppendStream, error) {
	ctx, cancel := context.WithCancel(c.withToken(ctx))
	stream, err := c.stub.AppendStream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &AppendStream{
		c:      c,
		ctx:    ctx,
		cancel: cancel,
		stream: stream,
		limits: mergeLimits{
			off:      c.opts.NoAppendCoalescing,
			maxBytes: c.opts.AppendMessageBytes,
			maxCount: c.opts.AppendMessageAppends,
		},
		gate: gate,
		done: make(chan struct{}),
	}
	s.cond = sync.NewCond(&s.mu)
	go s.run()
	// Wakes the waiters when the context ends (Close cancels it).
	go func() {
		<-ctx.Done()
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	return s, nil
}

// Send queues req with the next sequence number (returned), the client's
// epoch and entry CRCs. It waits only while the queue is full (the daemon
// is not taking appends as fast as they come). After the stream failed it
// returns io.EOF (Recv returns why); after CloseSend or Close, Canceled.
func (s *AppendStream) Send(req *pb.AppendRequest) (uint64, error) {
	seq := s.seq + 1
	req.Sequence = seq
	req.Epoch = s.c.Epoch()
	if !s.c.opts.NoEntryCRC32C && len(req.EntryCrc32C) == 0 {
		FillEntryCRC32C(req)
	}
	// With the caller sequence, which is never below the wire sequence the
	// request goes out with: an upper bound.
	size := proto.Size(req)

	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closing {
			return seq, status.Error(codes.Canceled, "walrus: Send after CloseSend")
		}
		if s.stopped || s.ended {
			return seq, io.EOF
		}
		if len(s.queue) == 0 || s.queueBytes+size <= queueLimitBytes {
			break
		}
		s.cond.Wait()
	}
	s.seq = seq
	s.queue = append(s.queue, queued{req: req, seq: seq, size: size})
	s.queueBytes += size
	s.cond.Broadcast()
	return seq, nil
}

// Recv returns the next acknowledgement (durable), in the order sent; see
// AppendStream for coalesced appends and for the error.
func (s *AppendStream) Recv() (*pb.AppendResponse, error) {
	if len(s.acks) == 0 && s.recvErr == nil {
		s.recvErr = s.receive()
	}
	if len(s.acks) > 0 {
		a := s.acks[0]
		s.acks[0] = nil
		s.acks = s.acks[1:]
		return a, nil
	}
	return nil, s.recvErr
}

// receive reads the daemon's next acknowledgement into s.acks, one per
// append of the acknowledged message.
func (s *AppendStream) receive() error {
	r, err := s.stream.Recv()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		// The sender has nothing more to do; Send returns io.EOF.
		s.ended = true
		s.cond.Broadcast()
		if err == io.EOF || len(s.messages) == 0 {
			return err
		}
		m := s.messages[0]
		return &AppendStreamError{First: m.first, Last: m.last, Err: err}
	}
	if len(s.messages) == 0 || s.messages[0].seq != r.Sequence {
		return status.Errorf(codes.Internal,
			"walrus: the daemon acknowledged message %d out of order", r.Sequence)
	}
	m := s.messages[0]
	s.messages = s.messages[1:]
	for seq := m.first; seq <= m.last; seq++ {
		s.acks = append(s.acks, &pb.AppendResponse{LastIndex: r.LastIndex, Sequence: seq})
	}
	return nil
}

// CloseSend writes the queued appends, then ends the sending side: Recv
// returns their acknowledgements, then io.EOF. It waits while the daemon
// is not taking them (until the stream's context ends). It returns the
// error that stopped the sending side early, if any; a stream the daemon
// ended is not one (Recv says why).
func (s *AppendStream) CloseSend() error {
	s.mu.Lock()
	s.closing = true
	s.cond.Broadcast()
	s.mu.Unlock()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sendErr == io.EOF {
		return nil
	}
	return s.sendErr
}

// Close is CloseSend, then releases the call: appends not acknowledged by
// then may or may not be written (to know, CloseSend and Recv until io.EOF
// before Close).
func (s *AppendStream) Close() error {
	err := s.CloseSend()
	s.cancel()
	return err
}

// run is the sender goroutine: it writes the queue, merging what may be
// merged, until CloseSend (then it half-closes), the context's end or a
// failed write.
func (s *AppendStream) run() {
	defer close(s.done)
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-s.ctx.Done():
		}
	}
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closing && !s.ended && s.ctx.Err() == nil {
			s.cond.Wait()
		}
		if err := s.ctx.Err(); err != nil {
			s.stopLocked(status.FromContextError(err).Err())
			s.mu.Unlock()
			return
		}
		if s.ended {
			s.stopLocked(io.EOF)
			s.mu.Unlock()
			return
		}
		if len(s.queue) == 0 {
			s.mu.Unlock()
			err := s.stream.CloseSend()
			s.mu.Lock()
			s.stopLocked(err)
			s.mu.Unlock()
			return
		}
		n := batchLen(s.queue, s.limits)
		batch := make([]queued, n)
		copy(batch, s.queue)
		rest := copy(s.queue, s.queue[n:])
		for i := rest; i < len(s.queue); i++ {
			s.queue[i] = queued{}
		}
		s.queue = s.queue[:rest]
		for _, q := range batch {
			s.queueBytes -= q.size
		}
		s.wireSeq++
		s.wireCount++
		msg := buildMessage(batch, s.wireSeq)
		// Recorded before the write, so the acknowledgement finds it.
		s.messages = append(s.messages, wireMessage{seq: s.wireSeq, first: batch[0].seq, last: batch[n-1].seq})
		s.cond.Broadcast() // room in the queue
		s.mu.Unlock()
		if err := s.stream.Send(msg); err != nil {
			s.mu.Lock()
			s.stopLocked(err)
			s.mu.Unlock()
			return
		}
	}
}

func (s *AppendStream) stopLocked(err error) {
	s.stopped = true
	s.sendErr = err
	s.queue = nil
	s.queueBytes = 0
	s.cond.Broadcast()
}

// batchLen is how many appends from the head of queue (not empty) go out
// as one message.
func batchLen(queue []queued, l mergeLimits) int {
	if l.off {
		return 1
	}
	n, bytes := 1, queue[0].size
	for n < len(queue) {
		next := queue[n]
		if l.maxCount > 0 && n >= l.maxCount {
			break
		}
		if bytes+next.size > l.maxBytes {
			break
		}
		if !mergeable(queue[n-1].req, next.req) {
			break
		}
		n++
		bytes += next.size
	}
	return n
}

// mergeable reports whether append b may follow append a in one message:
// the merged message is then taken or refused exactly when a and b one by
// one would be (see AppendStream).
func mergeable(a, b *pb.AppendRequest) bool {
	if !emptyHardState(a.HardState) {
		return false
	}
	if len(a.Entries) == 0 || len(b.Entries) == 0 {
		return false
	}
	last, first := a.Entries[len(a.Entries)-1], b.Entries[0]
	if last.GetIndex() == math.MaxUint64 || first.GetIndex() != last.GetIndex()+1 ||
		first.GetTerm() < last.GetTerm() {
		return false
	}
	if a.Epoch != b.Epoch {
		return false
	}
	// One CRC per entry in both, or none in either: a miscounted list stays
	// in its own message and is refused there.
	if len(a.EntryCrc32C) == 0 && len(b.EntryCrc32C) == 0 {
		return true
	}
	return len(a.EntryCrc32C) == len(a.Entries) && len(b.EntryCrc32C) == len(b.Entries)
}

func emptyHardState(hs *pb.HardState) bool {
	return hs.GetTerm() == 0 && hs.GetVote() == 0 && hs.GetCommit() == 0
}

// buildMessage is the AppendRequest carrying batch, with wire sequence seq;
// the callers' requests are left as they are.
func buildMessage(batch []queued, seq uint64) *pb.AppendRequest {
	last := batch[len(batch)-1].req
	if len(batch) == 1 {
		return &pb.AppendRequest{HardState: last.HardState, Entries: last.Entries,
			EntryCrc32C: last.EntryCrc32C, Sequence: seq, Epoch: last.Epoch}
	}
	entries, crcs := 0, 0
	for _, q := range batch {
		entries += len(q.req.Entries)
		crcs += len(q.req.EntryCrc32C)
	}
	m := &pb.AppendRequest{HardState: last.HardState, Entries: make([]*pb.Entry, 0, entries),
		Sequence: seq, Epoch: last.Epoch}
	if crcs > 0 {
		m.EntryCrc32C = make([]uint32, 0, crcs)
	}
	for _, q := range batch {
		m.Entries = append(m.Entries, q.req.Entries...)
		m.EntryCrc32C = append(m.EntryCrc32C, q.req.EntryCrc32C...)
	}
	return m
}
