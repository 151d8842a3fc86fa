// The one place that turns the bytes of a gRPC message into a walrus.v1
// message and back. The service registers every method raw (ByteBuffer in,
// ByteBuffer out) and parses here, because gRPC's own parsing cannot say
// what went wrong: an undecodable unary request is answered UNIMPLEMENTED
// with no message, and an undecodable stream message ends the stream as if
// the client had closed it (so an AppendStream would end OK with the appends
// after it neither written nor refused).
#ifndef WALRUS_SERVER_WIRE_MESSAGES_H_
#define WALRUS_SERVER_WIRE_MESSAGES_H_

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/status.h>

#include "absl/strings/str_cat.h"

namespace walrus {

// Parses `raw` into `*message` (a fresh one). INVALID_ARGUMENT naming the
// message type if the bytes are not its protobuf encoding.
template <typename Message>
[[nodiscard]] grpc::Status ParseWireMessage(const grpc::ByteBuffer& raw, Message* message) {
  grpc::ByteBuffer bytes(raw);  // the reader consumes its buffer; this shares the slices
  grpc::ProtoBufferReader reader(&bytes);
  if (message->ParseFromZeroCopyStream(&reader) && reader.status().ok()) return grpc::Status::OK;
  return grpc::Status(
      grpc::StatusCode::INVALID_ARGUMENT,
      absl::StrCat("request is not a valid ", message->GetTypeName(), ": its ", raw.Length(),
                   " bytes are not a protobuf encoding of one (truncated, or a "
                   "field of the wrong wire type); nothing was done"));
}

// Encodes `message` into `*raw`, replacing what it held. INTERNAL only if
// protobuf cannot encode it (over 2 GiB).
template <typename Message>
[[nodiscard]] grpc::Status SerializeWireMessage(const Message& message, grpc::ByteBuffer* raw) {
  raw->Clear();
  bool own_buffer = false;
  return grpc::SerializationTraits<Message>::Serialize(message, raw, &own_buffer);
}

}  // namespace walrus

#endif  // WALRUS_SERVER_WIRE_MESSAGES_H_
