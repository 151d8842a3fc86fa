// The receiving half of the Backup RPC (proto/walrus.proto). The daemon
// sends a header listing the files and the bytes of each, then the chunks.
// BackupReceiver checks every message against the header (one header, first;
// files in the listed order; offsets contiguous; every chunk's CRC-32C; every
// file complete at its listed size) and writes the copy with core's
// BackupWriter (core/backup.h), which publishes it only once it verifies
// clean and holds the last entry acknowledged before the backup started.
// Whatever fails, nothing appears at the destination.
//
// WalClient::Backup runs the call and feeds a BackupReceiver; the receiver
// needs no connection, so its checks can be driven directly.
//
// Thread-safety: a BackupReceiver has one owner.
#ifndef WALRUS_CLIENT_BACKUP_RECEIVER_H_
#define WALRUS_CLIENT_BACKUP_RECEIVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/backup.h"
#include "core/fs.h"
#include "core/verify.h"
#include "walrus.pb.h"

namespace walrus {

// What an online backup wrote.
struct BackupReply {
  uint64_t files = 0;
  uint64_t bytes = 0;  // data received
  // The last entry acknowledged before the backup started (0: none); the
  // copy holds it.
  uint64_t last_entry_index = 0;
  VerifyReport verified;  // the copy's check: clean
};

// Which side a backup failed on. kRemote: the daemon or what it sent (a
// refusal, a broken stream, a message that does not fit the header, a chunk
// damaged in transit). kLocal: this side (the destination, writing the copy,
// the copy's final check).
enum class BackupSide { kRemote, kLocal };

struct BackupOptions {
  // Upper bound for the data of one chunk (0: the daemon's default).
  uint32_t max_chunk_bytes = 0;
  // Called after the header and after every chunk; may be empty.
  BackupProgressFn progress;
  // Where the copy is written.
  FileSystem* fs = PosixFs();
};

class BackupReceiver {
 public:
  // Starts the copy into `dest` (BackupWriter::Begin: ALREADY_EXISTS if
  // `dest` exists, nothing changed). `progress` may be empty.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<BackupReceiver>> Begin(
      FileSystem* fs, const std::string& dest, BackupProgressFn progress);
  BackupReceiver(const BackupReceiver&) = delete;
  BackupReceiver& operator=(const BackupReceiver&) = delete;

  // Takes the next message of the stream. INTERNAL if it does not fit the
  // header (a missing or second header, a file not listed or out of order);
  // DATA_LOSS if a chunk fails its CRC-32C; INVALID_ARGUMENT if an offset or
  // a file's size is not what came before it says; the file system's error
  // if writing fails. REQUIRES: no earlier call failed.
  [[nodiscard]] absl::Status Take(const v1::BackupChunk& message);

  // After the stream ended OK: checks that every listed file is complete,
  // then publishes the copy (BackupWriter::Commit: DATA_LOSS if it does not
  // verify clean or lacks the last acknowledged entry). REQUIRES: no earlier
  // call failed.
  [[nodiscard]] absl::StatusOr<BackupReply> Finish();

  // The side the error of a failed Take or Finish came from.
  BackupSide failed_side() const { return failed_side_; }

 private:
  BackupReceiver(std::unique_ptr<BackupWriter> writer, BackupProgressFn progress);

  // Closes the open file (checking its size) and opens the following ones up
  // to `name` ("" closes everything; files of 0 bytes get no chunks).
  [[nodiscard]] absl::Status AdvanceTo(const std::string& name);
  void Report(uint64_t files_done);

  std::unique_ptr<BackupWriter> writer_;
  BackupProgressFn progress_;
  bool have_header_ = false;
  v1::BackupChunk header_;
  size_t next_ = 0;  // files opened so far
  std::string open_name_;
  uint64_t bytes_ = 0;
  BackupSide failed_side_ = BackupSide::kRemote;
};

}  // namespace walrus

#endif  // WALRUS_CLIENT_BACKUP_RECEIVER_H_
