// The TLS files walrusd serves: validated copies of the operator's files, so
// that a bad update never reaches a handshake.
//
// gRPC 1.51's FileWatcherCertificateProvider re-reads the key and the
// certificate it is given and, when they change, rebuilds the server's TLS
// context from them without checking that they belong together; if they do
// not (a certificate renamed into place before its key, a garbage file), the
// old context is already gone and every new handshake fails until a good
// pair appears. So gRPC is never given the operator's files. It reads memory
// files (memfd, named /proc/self/fd/N) that ValidatedTlsFiles fills only with
// a certificate chain, a private key that matches it and a CA bundle that
// OpenSSL parses. A watcher thread checks the operator's files every refresh
// interval; a valid change replaces the copies, an invalid one is logged
// (once per change, not at every check) and the previous pair stays served.
//
// The private key and the chain live in one memory file, read by gRPC as
// both the key file and the certificate file: one file swaps atomically
// (dup2 onto the same descriptor), two could be read half old, half new.
// gRPC reads that file twice per refresh and retries if its mtime changed
// in between; each new copy gets a later mtime, so a read that straddles a
// swap is retried, never served. Nothing is written to disk.
//
// Thread-safety: Check() may run on any thread; the watcher thread calls it.
// All state is guarded by mu_.
#ifndef WALRUS_SERVER_TLS_FILES_H_
#define WALRUS_SERVER_TLS_FILES_H_

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace walrus {

// OK if `cert_pem` holds at least one certificate, `key_pem` a private key
// (not encrypted) that matches the first certificate, and `ca_pem` (unless
// empty) at least one certificate. INVALID_ARGUMENT otherwise, saying which
// of them is wrong.
[[nodiscard]] absl::Status ValidateTlsPems(absl::string_view cert_pem, absl::string_view key_pem,
                                           absl::string_view ca_pem);

class ValidatedTlsFiles {
 public:
  struct Paths {
    std::string cert;  // --tls-cert-file
    std::string key;   // --tls-key-file
    std::string ca;    // --tls-ca-file; "" for none
  };

  // Reads and validates the operator's files and makes the first copies.
  // The file's error (NOT_FOUND, PERMISSION_DENIED) if one cannot be read;
  // INVALID_ARGUMENT, naming the flags, if they are not a valid set (walrusd
  // refuses to start either way).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ValidatedTlsFiles>> Create(Paths files);
  ~ValidatedTlsFiles();  // stops the watcher; gRPC must be done reading
  ValidatedTlsFiles(const ValidatedTlsFiles&) = delete;
  ValidatedTlsFiles& operator=(const ValidatedTlsFiles&) = delete;

  // What to give gRPC's file watcher: the key and the chain are one file.
  std::string key_path() const { return key_chain_path_; }
  std::string cert_path() const { return key_chain_path_; }
  std::string ca_path() const { return ca_path_; }  // "" without a CA

  enum class CheckResult {
    kUnchanged,  // the operator's files did not change since the last check
    kServed,     // they changed and are valid: the copies hold them now
    kRefused,    // they changed and are not valid: logged; the copies stay
  };
  // Reads the operator's files and compares them with the last check (the
  // files are small; content, unlike mtime, cannot miss a change); on a
  // change, validates and either replaces the copies or logs why not.
  CheckResult Check();

  // Calls Check() every `interval` on a thread of its own until destroyed.
  void StartWatching(std::chrono::microseconds interval);

 private:
  // The operator's files as last read, or the error reading them.
  struct Raw {
    std::string cert, key, ca;
    absl::Status error;
    bool operator==(const Raw& o) const {
      return cert == o.cert && key == o.key && ca == o.ca && error == o.error;
    }
  };
  // What the copies hold: the key then the chain, and the CA bundle.
  struct Usable {
    std::string key_chain, ca;
  };
  ValidatedTlsFiles(Paths files, int key_chain_fd, int ca_fd);
  static Raw Read(const Paths& files);
  // INVALID_ARGUMENT naming the flags, or the read error.
  static absl::StatusOr<Usable> Validate(const Paths& files, const Raw& raw);
  // Replaces the copies that differ. REQUIRES: mu_ held.
  absl::Status PublishLocked(const Usable& next);

  const Paths files_;
  const int key_chain_fd_;  // dup2 target: the number gRPC's path names
  const int ca_fd_;         // -1 without a CA
  const std::string key_chain_path_;
  const std::string ca_path_;

  std::mutex mu_;
  Raw seen_;                    // the operator's files at the last check
  Usable served_;               // what the copies hold
  int64_t copy_mtime_sec_ = 0;  // the copies' mtime; each swap adds at least 1 s
  bool stop_ = false;
  std::condition_variable stop_cv_;
  std::thread watcher_;
};

}  // namespace walrus

#endif  // WALRUS_SERVER_TLS_FILES_H_
