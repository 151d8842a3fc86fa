package walrus

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/golang/protobuf/proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "walrus/proto/walruspb"
)

// The local append socket's frames (walrusd --local-socket; the protocol is
// described in walrus.proto beside LocalHello, and in docs/local-socket.md).
const (
	localProtocolVersion = 1
	frameHello           = 1
	frameAppend          = 2
	frameWelcome         = 129
	frameAppended        = 130
	frameError           = 255
	// Acknowledgements and errors are small; a frame this large is not one.
	maxFrameFromDaemon = 1 << 20
)

// LocalOptions configures a LocalAppender.
type LocalOptions struct {
	// Token is a token from walrusd's --auth-token-file, if it has one.
	Token string
	// Epoch is set on every append whose own epoch is 0 (see Client.Fence).
	Epoch uint64
	// NoEntryCRC leaves AppendRequest.entry_crc32c empty when the caller did
	// (by default it is filled, so the daemon rejects data corrupted on the
	// way).
	NoEntryCRC bool
	// DialTimeout bounds connecting and the hello (default 10 s).
	DialTimeout time.Duration
}

// LocalAck is the acknowledgement of one append: durable.
type LocalAck struct {
	Sequence  uint64 // 1 for the first append sent on the connection
	LastIndex uint64 // the log's last index after this append
}

// LocalAppender appends through walrusd's local socket: a Unix socket beside
// the daemon, in length-prefixed frames instead of gRPC, for a Raft node on
// the same host. An acknowledgement means what it means over gRPC: the append
// (entries and hard state) is fdatasync'd. Everything else (Create, ReadAll,
// Fence, ...) is Client's.
//
// Send writes an append and returns its sequence without waiting; Recv
// returns the acknowledgements in order, each once its append is durable.
// One goroutine may Send while another Recvs (as with AppendStream): the
// daemon stops reading appends while too many acknowledgements are unread,
// so a caller that only Sends eventually blocks. Append sends one append and
// waits for it, for callers that do not pipeline (do not mix it with Recv).
//
// Failure: the daemon sends the first failure after the acknowledgements of
// the appends before it and closes the connection; the appends after it were
// not written. Recv returns those acknowledgements, then the error, with the
// daemon's code (Code and status.Code read it); Unavailable if the connection
// broke. Resend what was not acknowledged on a new connection.
type LocalAppender struct {
	conn    *net.UnixConn
	reader  *bufio.Reader
	opts    LocalOptions
	welcome *pb.LocalWelcome

	sendMu sync.Mutex
	sent   uint64 // guarded by sendMu
	frame  []byte // guarded by sendMu

	recvMu sync.Mutex
	acked  uint64 // guarded by recvMu
	err    error  // the connection's end, once Recv saw it; guarded by recvMu
}

// DialLocal connects to the local socket at path and says hello.
func DialLocal(path string, opts LocalOptions) (*LocalAppender, error) {
	timeout := opts.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	conn, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "no walrusd on the local socket %s: %v", path, err)
	}
	a := &LocalAppender{conn: conn.(*net.UnixConn), reader: bufio.NewReaderSize(conn, 64<<10), opts: opts}
	conn.SetDeadline(time.Now().Add(timeout))
	hello, _ := proto.Marshal(&pb.LocalHello{Version: localProtocolVersion, Token: opts.Token})
	if err := a.writeFrame(frameHello, hello); err != nil {
		conn.Close()
		return nil, err
	}
	kind, body, err := a.readFrame()
	if err == nil && kind == frameError {
		err = localError(body)
	} else if err == nil {
		welcome := &pb.LocalWelcome{}
		if kind != frameWelcome || proto.Unmarshal(body, welcome) != nil || welcome.Version == 0 {
			err = status.Error(codes.Internal, "walrusd did not answer the hello with a welcome")
		}
		a.welcome = welcome
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return a, nil
}

// MaxFrameBytes is the largest frame the daemon reads (its --max-message-bytes).
func (a *LocalAppender) MaxFrameBytes() uint64 { return a.welcome.MaxFrameBytes }

// Send writes one append without waiting for the disk and returns its
// sequence. The request is not modified after Send returns.
func (a *LocalAppender) Send(req *pb.AppendRequest) (uint64, error) {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	// A shallow copy: the caller's request is not modified, and its entries
	// are not copied (they are read once, when marshalled below).
	msg := &pb.AppendRequest{HardState: req.HardState, Entries: req.Entries,
		EntryCrc32C: req.EntryCrc32C, Epoch: req.Epoch, Sequence: a.sent + 1}
	if !a.opts.NoEntryCRC && len(msg.EntryCrc32C) == 0 && len(msg.Entries) > 0 {
		FillEntryCRC32C(msg)
	}
	if msg.Epoch == 0 {
		msg.Epoch = a.opts.Epoch
	}
	body, err := proto.Marshal(msg)
	if err != nil {
		return 0, status.Errorf(codes.Internal, "encoding the append: %v", err)
	}
	if max := a.welcome.MaxFrameBytes; max > 0 && uint64(len(body)+1) > max {
		return 0, status.Errorf(codes.InvalidArgument,
			"the append is %d bytes encoded; walrusd reads frames of at most %d (its --max-message-bytes); nothing was sent", len(body)+1, max)
	}
	if err := a.writeFrame(frameAppend, body); err != nil {
		return 0, err
	}
	a.sent = msg.Sequence
	return msg.Sequence, nil
}

// Recv returns the next acknowledgement, in order, blocking until it comes;
// after the last one, the connection's error (io.EOF once CloseSend was
// called and everything sent is acknowledged).
func (a *LocalAppender) Recv() (LocalAck, error) {
	a.recvMu.Lock()
	defer a.recvMu.Unlock()
	if a.err != nil {
		return LocalAck{}, a.err
	}
	kind, body, err := a.readFrame()
	if err == nil {
		switch kind {
		case frameError:
			err = localError(body)
		case frameAppended:
			resp := &pb.AppendResponse{}
			if proto.Unmarshal(body, resp) != nil {
				err = status.Error(codes.Internal, "walrusd sent an acknowledgement that does not parse")
			} else if resp.Sequence != a.acked+1 {
				err = status.Errorf(codes.Internal, "walrusd acknowledged append %d where %d was due",
					resp.Sequence, a.acked+1)
			} else {
				a.acked = resp.Sequence
				return LocalAck{Sequence: resp.Sequence, LastIndex: resp.LastIndex}, nil
			}
		default:
			err = status.Errorf(codes.Internal, "walrusd sent frame type %d where an acknowledgement was due", kind)
		}
	} else if err == io.EOF {
		a.sendMu.Lock()
		sent := a.sent
		a.sendMu.Unlock()
		if sent != a.acked {
			err = status.Errorf(codes.Unavailable,
				"walrusd closed the local socket with %d appends unacknowledged (appends 1..%d are durable)",
				sent-a.acked, a.acked)
		}
	}
	a.err = err
	return LocalAck{}, err
}

// Append sends one append and waits until it is durable: the log's last
// index after it. For callers that do not pipeline: appends sent before it
// must have been received.
func (a *LocalAppender) Append(req *pb.AppendRequest) (uint64, error) {
	seq, err := a.Send(req)
	if err != nil {
		return 0, err
	}
	ack, err := a.Recv()
	if err != nil {
		return 0, err
	}
	if ack.Sequence != seq {
		return 0, status.Errorf(codes.FailedPrecondition,
			"Append got the acknowledgement of append %d, sent before it and not received", ack.Sequence)
	}
	return ack.LastIndex, nil
}

// CloseSend tells the daemon no more appends come; Recv then returns the
// remaining acknowledgements and io.EOF.
func (a *LocalAppender) CloseSend() error {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	return a.conn.CloseWrite()
}

// Close closes the connection; unacknowledged appends may or may not be
// durable.
func (a *LocalAppender) Close() error { return a.conn.Close() }

// writeFrame writes one frame of `kind` carrying the encoded message `body`.
func (a *LocalAppender) writeFrame(kind byte, body []byte) error {
	a.frame = a.frame[:0]
	a.frame = binary.LittleEndian.AppendUint32(a.frame, uint32(len(body)+1))
	a.frame = append(a.frame, kind)
	a.frame = append(a.frame, body...)
	if _, err := a.conn.Write(a.frame); err != nil {
		return status.Errorf(codes.Unavailable, "writing to the local socket: %v", err)
	}
	return nil
}

func (a *LocalAppender) readFrame() (byte, []byte, error) {
	var prefix [4]byte
	if _, err := io.ReadFull(a.reader, prefix[:]); err != nil {
		if err == io.EOF {
			return 0, nil, io.EOF
		}
		return 0, nil, status.Errorf(codes.Unavailable, "reading the local socket: %v", err)
	}
	n := binary.LittleEndian.Uint32(prefix[:])
	if n == 0 || n > maxFrameFromDaemon {
		return 0, nil, status.Errorf(codes.Internal, "walrusd sent a frame of %d bytes on the local socket; not a frame it sends", n)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(a.reader, frame); err != nil {
		return 0, nil, status.Errorf(codes.Unavailable, "reading the local socket: %v", err)
	}
	return frame[0], frame[1:], nil
}

func localError(body []byte) error {
	e := &pb.LocalError{}
	if proto.Unmarshal(body, e) != nil {
		return status.Error(codes.Internal, "walrusd sent an error frame that does not parse")
	}
	code := codes.Code(e.Code)
	if code == codes.OK {
		code = codes.Unknown
	}
	return status.Error(code, fmt.Sprintf("local socket: %s", e.Message))
}
