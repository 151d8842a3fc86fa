// Package walrus is the Go client of walrusd's walrus.v1.WAL service.
//
// One Client owns one gRPC connection, made lazily by the first call; a
// daemon that is not up yet shows as codes.Unavailable, which is retried.
//
// Deadlines: every call gets Options.CallTimeout (ReadTimeout for ReadAll and
// Backup) from the moment it starts, unless the caller's context ends sooner;
// the deadline covers every retry and the backoff between them.
//
// Retries: a call that fails codes.Unavailable (daemon unreachable,
// restarting, shutting down) is retried with exponential backoff and jitter,
// up to Options.MaxAttempts. Every unary call is idempotent, which is what
// makes that safe (the same argument as the C++ client, client/client.h):
// Create with the same metadata succeeds again; an Append the log already
// holds (same indexes and terms) is skipped by the daemon; a marker saved
// twice is one marker; a release repeated releases nothing more; a retried
// Fence fences once more and returns the newest epoch, the one to hold.
// AppendStream and Backup are not retried: a broken stream reports its error
// and the caller reopens.
//
// Errors are gRPC status errors with the daemon's code and message; Code(err)
// extracts the code. proto/walrus.proto says what each code means, and
// docs/raft-integration.md what it means for a Raft node.
//
// Writer fencing: mutating calls carry Epoch() (see Fence in
// proto/walrus.proto); Fence makes this client the writer by raising the
// daemon's epoch and adopting the new one. On restart, call Fence before
// Create: Create carries the epoch too.
//
// Per-entry CRC-32C: unless Options.NoEntryCRC32C is set, Append and
// AppendStream fill entry_crc32c with the CRC-32C (Castagnoli) of each
// entry's data when the caller left it empty, so the daemon refuses data
// corrupted between this process and its disk (InvalidArgument, nothing
// written).
//
// A Client is safe for concurrent use; an AppendStream is not (one goroutine
// may Send while another Recvs).
package walrus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"hash/crc32"
	"io"
	"io/ioutil"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "walrus/proto/walruspb"
)

// Options configure a Client. The zero value is usable: plaintext, no token,
// epoch 0, entry CRCs on, the default timeouts and retry policy.
type Options struct {
	CallTimeout time.Duration // default 10 s
	ReadTimeout time.Duration // ReadAll and Backup; default 300 s

	// Retry policy for codes.Unavailable. MaxAttempts counts the first
	// attempt; 1 disables retries (default 6). Backoff starts at
	// InitialBackoff (100 ms), grows by 2x up to MaxBackoff (2 s), each
	// scaled by a random factor in [0.8, 1.2].
	MaxAttempts    int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration

	// NoEntryCRC32C leaves entry_crc32c empty (see the package comment).
	NoEntryCRC32C bool
	// ReadChunkBytes bounds one ReadAll message (0: the daemon's 1 MiB).
	ReadChunkBytes uint32

	// TLS: TLSCAFile (PEM) verifies the daemon; TLSCertFile and TLSKeyFile
	// (both or neither) present a client certificate. TLSServerName checks
	// the daemon's certificate for that name instead of the target's host.
	// No CA file: plaintext, for loopback or a Unix socket.
	TLSCAFile     string
	TLSCertFile   string
	TLSKeyFile    string
	TLSServerName string

	// TokenFile holds a bearer token (its first line, trimmed), read once by
	// Dial; Token is used as is when TokenFile is empty.
	TokenFile string
	Token     string

	// Epoch is the writer epoch mutating calls start with (0: never fenced).
	Epoch uint64

	// AppendStream coalescing (see AppendStream): NoAppendCoalescing sends
	// one message per append; AppendMessageBytes caps a coalesced message
	// (default 1 MiB; an append larger than it is sent alone; keep it within
	// the daemon's --max-message-bytes, 16 MiB by default);
	// AppendMessageAppends caps the appends in one (0: no cap).
	NoAppendCoalescing   bool
	AppendMessageBytes   int
	AppendMessageAppends int
}

// Client talks to one walrusd. See the package comment.
type Client struct {
	target string
	opts   Options
	conn   *grpc.ClientConn
	stub   pb.WALClient
	token  string
	epoch  uint64 // atomic

	randMu sync.Mutex
	rand   *rand.Rand
}

// Dial returns a Client for target, "host:port" or "unix:PATH". It makes no
// network call; it reads the TLS and token files of opts and fails on an
// unreadable file or inconsistent TLS options.
func Dial(target string, opts Options) (*Client, error) {
	if target == "" {
		return nil, status.Error(codes.InvalidArgument, "walrus: empty target")
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 10 * time.Second
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 300 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 6
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 2 * time.Second
	}
	if opts.AppendMessageBytes <= 0 {
		opts.AppendMessageBytes = 1 << 20
	}
	token := opts.Token
	if opts.TokenFile != "" {
		t, err := ReadTokenFile(opts.TokenFile)
		if err != nil {
			return nil, err
		}
		token = t
	}
	transport, err := transportCredentials(opts)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.Dial(target, transport,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	return &Client{
		target: target,
		opts:   opts,
		conn:   conn,
		stub:   pb.NewWALClient(conn),
		token:  token,
		epoch:  opts.Epoch,
		rand:   rand.New(rand.NewSource(time.Now().UnixNano())),
	}, nil
}

func transportCredentials(opts Options) (grpc.DialOption, error) {
	if opts.TLSCAFile == "" {
		if opts.TLSCertFile != "" || opts.TLSKeyFile != "" {
			return nil, status.Error(codes.InvalidArgument,
				"walrus: a client certificate needs TLSCAFile")
		}
		return grpc.WithInsecure(), nil
	}
	if (opts.TLSCertFile == "") != (opts.TLSKeyFile == "") {
		return nil, status.Error(codes.InvalidArgument,
			"walrus: TLSCertFile and TLSKeyFile go together")
	}
	ca, err := ioutil.ReadFile(opts.TLSCAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, status.Errorf(codes.InvalidArgument, "walrus: no certificate in %s", opts.TLSCAFile)
	}
	config := &tls.Config{RootCAs: pool, ServerName: opts.TLSServerName, MinVersion: tls.VersionTLS12}
	if opts.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(opts.TLSCertFile, opts.TLSKeyFile)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{cert}
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(config)), nil
}

// ReadTokenFile returns the bearer token in path: its first line, trimmed.
func ReadTokenFile(path string) (string, error) {
	b, err := ioutil.ReadFile(path)
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	if line == "" {
		return "", status.Errorf(codes.InvalidArgument, "walrus: %s holds no token", path)
	}
	return line, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Target is the address the client was dialled with.
func (c *Client) Target() string { return c.target }

// Epoch is the writer epoch mutating calls carry.
func (c *Client) Epoch() uint64 { return atomic.LoadUint64(&c.epoch) }

// SetEpoch sets the writer epoch mutating calls carry.
func (c *Client) SetEpoch(epoch uint64) { atomic.StoreUint64(&c.epoch, epoch) }

// Code is the gRPC code of err or of the first error it wraps that carries
// one (codes.OK for nil, codes.Unknown when none does), so callers can
// wrap walrus errors with fmt.Errorf("...: %w", err) and still branch on the
// daemon's code.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if s, ok := e.(interface{ GRPCStatus() *status.Status }); ok {
			return s.GRPCStatus().Code()
		}
	}
	return codes.Unknown
}

// Create creates the WAL with metadata: true if this call created it, false
// if it existed with the same metadata. FailedPrecondition: other metadata,
// or a stale epoch.
func (c *Client) Create(ctx context.Context, meta []byte) (bool, error) {
	var created bool
	err := c.retry(ctx, c.opts.CallTimeout, func(ctx context.Context) error {
		r, err := c.stub.Create(ctx, &pb.CreateRequest{Metadata: meta, Epoch: c.Epoch()})
		if err == nil {
			created = r.Created
		}
		return err
	})
	return created, err
}

// Append appends a hard state (nil: unchanged) and contiguous entries and
// returns the log's last index once they are durable.
func (c *Client) Append(ctx context.Context, hs *pb.HardState, entries []*pb.Entry) (uint64, error) {
	return c.AppendRequest(ctx, &pb.AppendRequest{HardState: hs, Entries: entries})
}

// AppendRequest sends a ready-made request; its epoch is set to Epoch() and
// its entry CRCs are filled as the package comment says.
func (c *Client) AppendRequest(ctx context.Context, req *pb.AppendRequest) (uint64, error) {
	req.Epoch = c.Epoch()
	if !c.opts.NoEntryCRC32C && len(req.EntryCrc32C) == 0 {
		FillEntryCRC32C(req)
	}
	var last uint64
	err := c.retry(ctx, c.opts.CallTimeout, func(ctx context.Context) error {
		r, err := c.stub.Append(ctx, req)
		if err == nil {
			last = r.LastIndex
		}
		return err
	})
	return last, err
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EntryCRC32C is the CRC-32C (Castagnoli) of data, as entry_crc32c carries.
func EntryCRC32C(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

// FillEntryCRC32C sets req.EntryCrc32C to the CRC-32C of each entry's data.
func FillEntryCRC32C(req *pb.AppendRequest) {
	req.EntryCrc32C = make([]uint32, len(req.Entries))
	for i, e := range req.Entries {
		req.EntryCrc32C[i] = EntryCRC32C(e.Data)
	}
}

// ReadAllReply is the durable log after a snapshot marker, reassembled from
// the streamed chunks.
type ReadAllReply struct {
	Metadata  []byte
	HardState *pb.HardState
	Entries   []*pb.Entry        // after the marker, in index order
	Snapshot  *pb.SnapshotMarker // the marker the read started from
}

// ReadAll reads the durable log after the snapshot marker (index, term);
// (0, 0) reads from the start. NotFound: no such marker; FailedPrecondition:
// its term differs; DataLoss: corruption on the daemon's disk. A broken
// stream is retried from the start.
func (c *Client) ReadAll(ctx context.Context, index, term uint64) (*ReadAllReply, error) {
	return c.readAll(ctx, &pb.ReadAllRequest{SnapshotIndex: index, SnapshotTerm: term})
}

// ReadAllFromCommittedSnapshot reads the durable log after the newest
// snapshot marker at or below the durable commit (reply.Snapshot says which),
// as etcd picks the snapshot to restart from: a restarting node needs no list
// of markers of its own. FailedPrecondition: no such marker.
func (c *Client) ReadAllFromCommittedSnapshot(ctx context.Context) (*ReadAllReply, error) {
	return c.readAll(ctx, &pb.ReadAllRequest{FromCommittedSnapshot: true})
}

// Snapshots returns the snapshot catalogue: every durable marker in the
// segments the daemon holds (oldest first; markers in released segments are
// left out, except the newest) and the durable commit.
func (c *Client) Snapshots(ctx context.Context) (*pb.SnapshotsResponse, error) {
	var r *pb.SnapshotsResponse
	err := c.retry(ctx, c.opts.CallTimeout, func(ctx context.Context) error {
		var err error
		r, err = c.stub.Snapshots(ctx, &pb.SnapshotsRequest{})
		return err
	})
	return r, err
}

// Entries reads entries [lo, hi) of the durable log, up to maxBytes of
// entries (0: no limit; at least one entry), from the daemon's entry index:
// etcd raft's Storage.Entries. The answer may hold fewer entries than asked
// (the byte limit, or 4 MiB per answer); ask again from the next index.
// codes.NotFound: compacted (below FirstIndex); codes.OutOfRange: not
// durable yet (past LastIndex). The response carries both bounds.
func (c *Client) Entries(ctx context.Context, lo, hi, maxBytes uint64) (*pb.EntriesResponse, error) {
	var r *pb.EntriesResponse
	err := c.retry(ctx, c.opts.CallTimeout, func(ctx context.Context) error {
		var err error
		r, err = c.stub.Entries(ctx, &pb.EntriesRequest{Lo: lo, Hi: hi, MaxBytes: maxBytes})
		return err
	})
	return r, err
}

// Term is the term of entry index (at the newest snapshot marker's index,
// the marker's term), with the served bounds; errors as Entries.
func (c *Client) Term(ctx context.Context, index uint64) (*pb.TermResponse, error) {
	var r *pb.TermResponse
	err := c.retry(ctx, c.opts.CallTimeout, func(ctx context.Context) error {
		var err error
		r, err = c.stub.Term(ctx, &pb.TermRequest{Index: index})
		return err
	})
	return r, err
}

func (c *Client) readAll(ctx context.Context, req *pb.ReadAllRequest) (*ReadAllReply, error) {
	req.MaxChunkBytes = c.opts.ReadChunkBytes
	var reply *ReadAllReply
	err := c.retry(ctx, c.opts.ReadTimeout, func(ctx context.Context) error {
		stream, err := c.stub.ReadAll(ctx, req)
		if err != nil {
			return err
		}
		r := &ReadAllReply{}
		for {
			m, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if m.HasHeader {
				r.Metadata = m.Metadata
				r.HardState = m.HardState
				r.Snapshot = m.Snapshot
			}
			r.Entries = append(r.Entries, m.Entries...)
		}
		if r.HardState == nil {
			r.HardState = &pb.HardState{}
		}
		if r.Snapshot == nil {
			r.Snapshot = &pb.SnapshotMarker{}
		}
		reply = r
		return nil
	})
	return reply, err
}

// SaveSnapshot records a snapshot marker; durable on return.
func (c *Client) SaveSnapshot(ctx context.Context, index, term uint64) error {
	return c.retry(ctx, c.opts.CallTimeout, func(ctx context.Context) error {
		_, err := c.stub.SaveSnapshot(ctx, &pb.SaveSnapshotRequest{Index: index, Term: term, Epoch: c.Epoch()})
		return err
	})
}

// ReleaseTo releases the segments wholly before the one holding index (they
// may be purged) and returns how many.
func (c *Client) ReleaseTo(ctx context.Context, index uint64) (uint32, error) {
	var n uint32
	err := c.retry(ctx, c.opts.CallTimeout, func(ctx context.Context) error {
		r, err := c.stub.ReleaseTo(ctx, &pb.ReleaseToRequest{Index: index, Epoch: c.Epoch()})
		if err == nil {
			n = r.ReleasedSegments
		}
		return err
	})
	return n, err
}

// Status reports the daemon's view of the log.
func (c *Client) Status(ctx context.Context) (*pb.StatusResponse, error) {
	var r *pb.StatusResponse
	err := c.retry(ctx, c.opts.CallTimeout, func(ctx context.Context) error {
		var err error
		r, err = c.stub.Status(ctx, &pb.StatusRequest{})
		return err
	})
	return r, err
}

// Fence raises the daemon's writer epoch and adopts the new one: from then
// on every older writer's mutating calls fail FailedPrecondition.
func (c *Client) Fence(ctx context.Context) (uint64, error) {
	var epoch uint64
	err := c.retry(ctx, c.opts.CallTimeout, func(ctx context.Context) error {
		r, err := c.stub.Fence(ctx, &pb.FenceRequest{})
		if err == nil {
			epoch = r.Epoch
		}
		return err
	})
	if err == nil {
		c.SetEpoch(epoch)
	}
	return epoch, err
}

// Backup streams a point-in-time backup: onChunk gets every message in
// order, the header first; an error it returns cancels the call and is
// returned. Not retried.
func (c *Client) Backup(ctx context.Context, maxChunkBytes uint32, onChunk func(*pb.BackupChunk) error) error {
	ctx, cancel := context.WithTimeout(c.withToken(ctx), c.opts.ReadTimeout)
	defer cancel()
	stream, err := c.stub.Backup(ctx, &pb.BackupRequest{MaxChunkBytes: maxChunkBytes}, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := onChunk(m); err != nil {
			return err
		}
	}
}

// Follow streams the durable log from fromIndex on, as it becomes durable:
// onMessage gets every message in order (entries, or TruncatedFrom when a
// new leader replaced entries already received: drop them first). It
// returns when ctx ends, onMessage returns an error (returned), or the
// stream ends: codes.NotFound when the follower fell behind a release,
// codes.FailedPrecondition when a snapshot marker replaced what was
// received, codes.Unavailable when walrusd shut down (follow again from the
// next index). ctx is the only deadline.
func (c *Client) Follow(ctx context.Context, fromIndex uint64, maxChunkBytes uint32, onMessage func(*pb.FollowResponse) error) error {
	ctx, cancel := context.WithCancel(c.withToken(ctx))
	defer cancel()
	stream, err := c.stub.Follow(ctx, &pb.FollowRequest{FromIndex: fromIndex, MaxChunkBytes: maxChunkBytes})
	if err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		if err := onMessage(m); err != nil {
			return err
		}
	}
}

func (c *Client) withToken(ctx context.Context) context.Context {
	if c.token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
}

// retry runs attempt under the retry policy within timeout (or ctx's own
// deadline, if sooner).
func (c *Client) retry(ctx context.Context, timeout time.Duration, attempt func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(c.withToken(ctx), timeout)
	defer cancel()
	backoff := c.opts.InitialBackoff
	var err error
	for i := 1; ; i++ {
		err = attempt(ctx)
		if Code(err) != codes.Unavailable || i >= c.opts.MaxAttempts {
			break
		}
		pause := c.jitter(backoff)
		if backoff *= 2; backoff > c.opts.MaxBackoff {
			backoff = c.opts.MaxBackoff
		}
		select {
		case <-ctx.Done():
			// The last attempt's error keeps its code (Unavailable): the
			// daemon was not reached in time.
			return err
		case <-time.After(pause):
		}
	}
	return err
}

func (c *Client) jitter(d time.Duration) time.Duration {
	c.randMu.Lock()
	f := 0.8 + 0.4*c.rand.Float64()
	c.randMu.Unlock()
	return time.Duration(float64(d) * f)
}
