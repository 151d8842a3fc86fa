package walrus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/golang/protobuf/proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"walrus/client/go/internal/testdaemon"
	"walrus/client/go/walrus"
	pb "walrus/proto/walruspb"
)

func entry(index, term uint64, data []byte) *pb.Entry {
	return &pb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term),
		Type: pb.EntryType_EntryNormal.Enum(), Data: data}
}

func hardState(term, vote, commit uint64) *pb.HardState {
	return &pb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

func created(t *testing.T, d *testdaemon.Daemon, opts walrus.Options) *walrus.Client {
	t.Helper()
	c := dialWith(t, d, opts)
	if _, err := c.Create(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return c
}

// openPaused opens a stream whose sender waits for release; the test's end
// cancels it, then closes it.
func openPaused(t *testing.T, c *walrus.Client) (*walrus.AppendStream, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, release, err := walrus.OpenPausedAppendStream(ctx, c)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	t.Cleanup(cancel)
	return s, release
}

type ack struct{ seq, last uint64 }

// sendPaused queues reqs on a paused stream, releases it, closes the sending
// side and returns every acknowledgement, the error that ended the
// acknowledgements (nil for io.EOF) and how many messages were written.
func sendPaused(t *testing.T, c *walrus.Client, reqs ...*pb.AppendRequest) ([]ack, error, uint64) {
	t.Helper()
	s, release := openPaused(t, c)
	for i, r := range reqs {
		if seq, err := s.Send(r); err != nil || seq != uint64(i+1) {
			t.Fatalf("Send %d = %d, %v", i+1, seq, err)
		}
	}
	release()
	if err := s.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	var acks []ack
	for {
		r, err := s.Recv()
		if err == io.EOF {
			return acks, nil, walrus.WireMessages(s)
		}
		if err != nil {
			return acks, err, walrus.WireMessages(s)
		}
		acks = append(acks, ack{r.Sequence, r.LastIndex})
	}
}

func wantAcks(t *testing.T, got []ack, lastIndexes ...uint64) {
	t.Helper()
	var want []ack
	for i, last := range lastIndexes {
		want = append(want, ack{uint64(i + 1), last})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("acknowledgements (sequence last_index) %v; want %v", got, want)
	}
}

// logOf is the durable log as "index/term" of each entry.
func logOf(t *testing.T, c *walrus.Client) (string, *walrus.ReadAllReply) {
	t.Helper()
	r, err := c.ReadAll(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var es []string
	for _, e := range r.Entries {
		es = append(es, fmt.Sprintf("%d/%d", e.GetIndex(), e.GetTerm()))
	}
	return strings.Join(es, " "), r
}

// Many one-entry appends in flight: each is acknowledged in order with its
// own sequence, fewer messages than appends reach the daemon, and the log
// holds every entry.
func TestAppendStream_CoalescesQueuedAppendsAndAcknowledgesEachInOrder(t *testing.T) {
	d := testdaemon.Start(t)
	c := created(t, d, walrus.Options{})
	const n, window = 1000, 64
	s, release := openPaused(t, c)
	slots := make(chan struct{}, window)
	type result struct {
		acks []*pb.AppendResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		for {
			a, err := s.Recv()
			if err != nil {
				if err != io.EOF {
					r.err = err
				}
				break
			}
			r.acks = append(r.acks, a)
			<-slots
		}
		done <- r
	}()
	for i := uint64(1); i <= n; i++ {
		slots <- struct{}{}
		data := []byte(fmt.Sprintf("entry %d", i))
		if seq, err := s.Send(&pb.AppendRequest{Entries: []*pb.Entry{entry(i, 1, data)}}); err != nil || seq != i {
			t.Fatalf("Send %d = %d, %v", i, seq, err)
		}
		if i == window {
			// The first window is queued as a whole: one message.
			release()
		}
	}
	if err := s.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	r := <-done
	if r.err != nil || len(r.acks) != n {
		t.Fatalf("%d acknowledgements, then %v; want %d, then io.EOF", len(r.acks), r.err, n)
	}
	prev := uint64(0)
	for i, a := range r.acks {
		seq := uint64(i + 1)
		if a.Sequence != seq || a.LastIndex < seq || a.LastIndex < prev {
			t.Fatalf("acknowledgement %d = %v (previous last_index %d)", seq, a, prev)
		}
		if seq <= window && a.LastIndex != window {
			t.Fatalf("acknowledgement %d = %v; want the first message's last index %d", seq, a, window)
		}
		prev = a.LastIndex
	}
	if prev != n {
		t.Fatalf("last acknowledged index %d; want %d", prev, n)
	}
	messages := walrus.WireMessages(s)
	if messages >= n {
		t.Fatalf("%d messages for %d appends; want fewer", messages, n)
	}
	t.Logf("%d appends in %d messages", n, messages)
	_, log := logOf(t, c)
	if len(log.Entries) != n {
		t.Fatalf("the log holds %d entries; want %d", len(log.Entries), n)
	}
	for i, e := range log.Entries {
		if e.GetIndex() != uint64(i+1) || string(e.Data) != fmt.Sprintf("entry %d", i+1) {
			t.Fatalf("entry %d = %v", i+1, e)
		}
	}
}

// A hard state ends a message, an append that is not the next index starts
// one, and an append without entries goes alone; all are written.
func TestAppendStream_HardStateOverlapAndNoEntriesEndMessages(t *testing.T) {
	d := testdaemon.Start(t)
	c := created(t, d, walrus.Options{})
	acks, err, messages := sendPaused(t, c,
		&pb.AppendRequest{Entries: entries(1, 2, 1)},
		&pb.AppendRequest{Entries: entries(3, 3, 1), HardState: hardState(1, 1, 1)},
		&pb.AppendRequest{Entries: entries(4, 4, 1)},
		&pb.AppendRequest{Entries: entries(5, 5, 2)},
		// Rewrites the uncommitted entry 5: not the next index.
		&pb.AppendRequest{Entries: entries(5, 6, 3)},
		&pb.AppendRequest{HardState: hardState(3, 1, 4)},
		&pb.AppendRequest{Entries: entries(7, 7, 3)},
		&pb.AppendRequest{Entries: entries(8, 8, 3)},
	)
	if err != nil {
		t.Fatal(err)
	}
	wantAcks(t, acks, 3, 3, 5, 5, 6, 6, 8, 8)
	if messages != 5 {
		t.Fatalf("%d messages; want 5: 1-2, 3-4, 5, 6, 7-8", messages)
	}
	got, log := logOf(t, c)
	if want := "1/1 2/1 3/1 4/1 5/3 6/3 7/3 8/3"; got != want || !proto.Equal(log.HardState, hardState(3, 1, 4)) {
		t.Fatalf("log %q, hard state %v; want %q, %v", got, log.HardState, want, hardState(3, 1, 4))
	}
}

// Appends with entry CRCs and appends without are not merged.
func TestAppendStream_MixedCRCPresenceEndsMessages(t *testing.T) {
	d := testdaemon.Start(t)
	c := created(t, d, walrus.Options{NoEntryCRC32C: true})
	withCRC := func(r *pb.AppendRequest) *pb.AppendRequest {
		walrus.FillEntryCRC32C(r)
		return r
	}
	acks, err, messages := sendPaused(t, c,
		&pb.AppendRequest{Entries: entries(1, 1, 1)},
		&pb.AppendRequest{Entries: entries(2, 2, 1)},
		withCRC(&pb.AppendRequest{Entries: entries(3, 3, 1)}),
		withCRC(&pb.AppendRequest{Entries: entries(4, 4, 1)}),
		&pb.AppendRequest{Entries: entries(5, 5, 1)},
	)
	if err != nil {
		t.Fatal(err)
	}
	wantAcks(t, acks, 2, 2, 4, 4, 5)
	if messages != 3 {
		t.Fatalf("%d messages; want 3: 1-2, 3-4, 5", messages)
	}
}

// The byte cap bounds a message; an append larger than it goes alone.
func TestAppendStream_ByteCapEndsMessages(t *testing.T) {
	small := func(i uint64) *pb.AppendRequest {
		return &pb.AppendRequest{Entries: []*pb.Entry{entry(i, 1, make([]byte, 100))}}
	}
	probe := small(13)
	probe.Sequence = 13
	walrus.FillEntryCRC32C(probe)
	size := proto.Size(probe)
	limit := 3*size + size/2
	d := testdaemon.Start(t)
	c := created(t, d, walrus.Options{AppendMessageBytes: limit})
	var reqs []*pb.AppendRequest
	for i := uint64(1); i <= 10; i++ {
		reqs = append(reqs, small(i))
	}
	reqs = append(reqs, &pb.AppendRequest{Entries: []*pb.Entry{entry(11, 1, make([]byte, 2*limit))}})
	reqs = append(reqs, small(12), small(13))
	acks, err, messages := sendPaused(t, c, reqs...)
	if err != nil {
		t.Fatal(err)
	}
	wantAcks(t, acks, 3, 3, 3, 6, 6, 6, 9, 9, 9, 10, 11, 13, 13)
	if messages != 6 {
		t.Fatalf("%d messages; want 6: 1-3, 4-6, 7-9, 10, 11, 12-13", messages)
	}
}

// The count cap bounds a message.
func TestAppendStream_CountCapEndsMessages(t *testing.T) {
	d := testdaemon.Start(t)
	c := created(t, d, walrus.Options{AppendMessageAppends: 4})
	var reqs []*pb.AppendRequest
	for i := uint64(1); i <= 10; i++ {
		reqs = append(reqs, &pb.AppendRequest{Entries: entries(i, i, 1)})
	}
	acks, err, messages := sendPaused(t, c, reqs...)
	if err != nil {
		t.Fatal(err)
	}
	wantAcks(t, acks, 4, 4, 4, 4, 8, 8, 8, 8, 10, 10)
	if messages != 3 {
		t.Fatalf("%d messages; want 3", messages)
	}
}

func wantStreamError(t *testing.T, err error, code codes.Code, first, last uint64) {
	t.Helper()
	var se *walrus.AppendStreamError
	if !errors.As(err, &se) || se.First != first || se.Last != last {
		t.Fatalf("error %v; want an AppendStreamError for appends %d..%d", err, first, last)
	}
	if walrus.Code(err) != code || status.Code(err) != code {
		t.Fatalf("error %v has code %v (status.Code %v); want %v", err, walrus.Code(err), status.Code(err), code)
	}
	prefix := fmt.Sprintf("appends %d..%d (sent as one message): ", first, last)
	if msg := status.Convert(err).Message(); !strings.HasPrefix(msg, prefix) {
		t.Fatalf("status message %q; want it to start %q", msg, prefix)
	}
}

// A coalesced message the daemon refuses (it would overwrite a committed
// entry) fails each of its appends; the appends acknowledged before it are
// durable, and nothing of it or after it is written.
func TestAppendStream_RefusedMessageFailsEachOfItsAppends(t *testing.T) {
	d := testdaemon.Start(t)
	c := created(t, d, walrus.Options{})
	if _, err := c.Append(context.Background(), hardState(1, 1, 5), entries(1, 5, 1)); err != nil {
		t.Fatal(err)
	}
	acks, err, messages := sendPaused(t, c,
		&pb.AppendRequest{Entries: entries(6, 6, 1)},
		&pb.AppendRequest{Entries: entries(7, 7, 1), HardState: hardState(1, 1, 7)},
		&pb.AppendRequest{Entries: entries(5, 5, 2)},
		&pb.AppendRequest{Entries: entries(6, 6, 2)},
		&pb.AppendRequest{Entries: entries(7, 7, 2)},
		&pb.AppendRequest{Entries: entries(8, 8, 2), HardState: hardState(2, 1, 7)},
		&pb.AppendRequest{Entries: entries(9, 9, 2)},
	)
	wantAcks(t, acks, 7, 7)
	wantStreamError(t, err, codes.FailedPrecondition, 3, 6)
	if messages != 3 {
		t.Fatalf("%d messages; want 3: 1-2, 3-6, 7", messages)
	}
	got, log := logOf(t, c)
	if want := "1/1 2/1 3/1 4/1 5/1 6/1 7/1"; got != want || !proto.Equal(log.HardState, hardState(1, 1, 7)) {
		t.Fatalf("log %q, hard state %v; want %q, commit 7", got, log.HardState, want)
	}
}

// Appends with a stale epoch (another writer fenced) fail together; nothing
// of them is written.
func TestAppendStream_StaleEpochFailsEveryAppendOfTheMessage(t *testing.T) {
	d := testdaemon.Start(t)
	ctx := context.Background()
	old := dial(t, d)
	if _, err := old.Fence(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Append(ctx, nil, entries(1, 1, 1)); err != nil {
		t.Fatal(err)
	}
	s, release := openPaused(t, old)
	for i := uint64(2); i <= 5; i++ {
		if _, err := s.Send(&pb.AppendRequest{Entries: entries(i, i, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dial(t, d).Fence(ctx); err != nil {
		t.Fatal(err)
	}
	release()
	_, err := s.Recv()
	wantStreamError(t, err, codes.FailedPrecondition, 1, 4)
	if _, again := s.Recv(); again != err {
		t.Fatalf("Recv after the error = %v; want the same error", again)
	}
	// The stream is over: its sender ends and Send reports io.EOF.
	<-walrus.SenderDone(s)
	if _, err := s.Send(&pb.AppendRequest{Entries: entries(6, 6, 1)}); err != io.EOF {
		t.Fatalf("Send after the stream ended = %v; want io.EOF", err)
	}
	st, err := old.Status(ctx)
	if err != nil || st.LastIndex != 1 {
		t.Fatalf("Status last index = %d, %v; want 1", st.GetLastIndex(), err)
	}
}

// The end of the stream's context ends its sender: Send reports io.EOF and
// Recv the cancellation.
func TestAppendStream_CancelEndsTheSender(t *testing.T) {
	d := testdaemon.Start(t)
	c := created(t, d, walrus.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.OpenAppendStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Send(&pb.AppendRequest{Entries: entries(1, 1, 1)}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recv(); err != nil || r.Sequence != 1 || r.LastIndex != 1 {
		t.Fatalf("Recv = %v, %v", r, err)
	}
	cancel()
	<-walrus.SenderDone(s)
	if _, err := s.Send(&pb.AppendRequest{Entries: entries(2, 2, 1)}); err != io.EOF {
		t.Fatalf("Send after cancel = %v; want io.EOF", err)
	}
	if _, err := s.Recv(); walrus.Code(err) != codes.Canceled {
		t.Fatalf("Recv after cancel = %v; want Canceled", err)
	}
}

// Appends over the byte cap (1.25 MiB each, 60 MiB in all), sent without waiting
// for their acknowledgements: Send waits for room in the queue rather than
// queueing without bound, and every append is written.
func TestAppendStream_LargeAppendsAreAllWrittenInOrder(t *testing.T) {
	d := testdaemon.Start(t)
	c := created(t, d, walrus.Options{})
	s, err := c.OpenAppendStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 48
	done := make(chan error, 1)
	go func() {
		for i := uint64(1); i <= n; i++ {
			r, err := s.Recv()
			if err == nil && (r.Sequence != i || r.LastIndex < i) {
				err = fmt.Errorf("acknowledgement %d = %v", i, r)
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := uint64(1); i <= n; i++ {
		data := make([]byte, 1<<20+1<<18)
		data[0] = byte(i)
		if _, err := s.Send(&pb.AppendRequest{Entries: []*pb.Entry{entry(i, 1, data)}}); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m := walrus.WireMessages(s); m != n {
		t.Fatalf("%d messages; want %d: each append is over the byte cap", m, n)
	}
	st, err := c.Status(context.Background())
	if err != nil || st.LastIndex != n {
		t.Fatalf("Status last index = %d, %v; want %d", st.GetLastIndex(), err, n)
	}
}
