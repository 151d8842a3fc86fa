// The frames of the local append socket (walrusd --local-socket; the
// messages and the protocol are described in walrus.proto, beside
// LocalHello). Shared by the daemon and the client library.
//
// A frame is a 4-byte little-endian length N, then N bytes: the type byte and
// the protobuf encoding of the message. N counts the type byte, so N >= 1.
#ifndef WALRUS_PROTO_LOCAL_FRAMES_H_
#define WALRUS_PROTO_LOCAL_FRAMES_H_

#include <google/protobuf/message_lite.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace walrus::local {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kLengthBytes = 4;

enum FrameType : uint8_t {
  kHello = 1,       // client: LocalHello, the first frame
  kAppend = 2,      // client: AppendRequest
  kWelcome = 129,   // daemon: LocalWelcome, the answer to the hello
  kAppended = 130,  // daemon: AppendResponse, one per append, in order
  kError = 255,     // daemon: LocalError, the last frame
};

// Appends one frame carrying `message` to `*out`. False only if the message
// cannot be encoded (over 2 GiB).
inline bool AppendFrame(FrameType type, const google::protobuf::MessageLite& message,
                        std::string* out) {
  const size_t body = message.ByteSizeLong();
  if (body >= (size_t{1} << 31)) return false;
  const uint32_t n = static_cast<uint32_t>(body + 1);
  const size_t at = out->size();
  out->resize(at + kLengthBytes + n);
  char* p = out->data() + at;
  for (size_t i = 0; i < kLengthBytes; ++i) p[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  p[kLengthBytes] = static_cast<char>(type);
  message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(p + kLengthBytes + 1));
  return true;
}

// Receives what the socket `fd` holds, without waiting, onto the end of
// `*in`: up to 256 KiB, through a buffer of the calling thread's (growing
// `*in` by the chunk first would zero-fill all of it on every call, most of
// it only to be cut off again). Returns recv(2)'s result: the bytes received,
// 0 at the end of the stream, or -1 with errno set.
inline ssize_t ReceiveOnto(int fd, std::string* in) {
  constexpr size_t kChunk = 256 << 10;
  thread_local const std::unique_ptr<char[]> chunk = std::make_unique_for_overwrite<char[]>(kChunk);
  const ssize_t n = ::recv(fd, chunk.get(), kChunk, MSG_DONTWAIT);
  if (n > 0) in->append(chunk.get(), static_cast<size_t>(n));
  return n;
}

// What the front of a receive buffer holds.
struct FramePeek {
  enum Kind {
    kNeedMore,    // not a whole frame yet; `length` is set once the prefix is in
    kFrame,       // a whole frame: type, body and size (prefix included)
    kEmptyFrame,  // N == 0: no type byte
    kTooLarge,    // N > the reader's limit; `length` is N
  };
  Kind kind = kNeedMore;
  uint32_t length = 0;
  uint8_t type = 0;
  absl::string_view body;
  size_t size = 0;
};

inline FramePeek PeekFrame(absl::string_view buffered, size_t max_frame_bytes) {
  FramePeek peek;
  if (buffered.size() < kLengthBytes) return peek;
  uint32_t n = 0;
  for (size_t i = 0; i < kLengthBytes; ++i) {
    n |= static_cast<uint32_t>(static_cast<uint8_t>(buffered[i])) << (8 * i);
  }
  peek.length = n;
  if (n == 0) {
    peek.kind = FramePeek::kEmptyFrame;
    return peek;
  }
  if (n > max_frame_bytes) {
    peek.kind = FramePeek::kTooLarge;
    return peek;
  }
  if (buffered.size() - kLengthBytes < n) return peek;
  peek.kind = FramePeek::kFrame;
  peek.type = static_cast<uint8_t>(buffered[kLengthBytes]);
  peek.body = buffered.substr(kLengthBytes + 1, n - 1);
  peek.size = kLengthBytes + n;
  return peek;
}

}  // namespace walrus::local

#endif  // WALRUS_PROTO_LOCAL_FRAMES_H_
