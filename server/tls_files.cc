#include "server/tls_files.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/fs.h"

namespace walrus {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

Bio ReadBio(absl::string_view pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// An encrypted key would make OpenSSL ask for a passphrase on the terminal.
int NoPassphrase(char*, int, int, void*) { return -1; }

std::vector<Cert> ReadCerts(absl::string_view pem) {
  std::vector<Cert> certs;
  Bio bio = ReadBio(pem);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)) {
    certs.emplace_back(cert);
  }
  ERR_clear_error();  // the read that ended the loop
  return certs;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

// The key, then the chain, re-encoded from what OpenSSL parsed: the file
// gRPC reads as both key and certificate holds nothing else.
absl::StatusOr<std::string> KeyChain(absl::string_view cert_pem, absl::string_view key_pem,
                                     absl::string_view ca_pem) {
  std::vector<Cert> chain = ReadCerts(cert_pem);
  if (chain.empty()) {
    return absl::InvalidArgumentError("the certificate file holds no PEM certificate");
  }
  Bio key_bio = ReadBio(key_pem);
  Key key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        "the key file holds no PEM private key (or an encrypted one, which is not supported)");
  }
  if (X509_check_private_key(chain[0].get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "the private key does not match the certificate (its first certificate)");
  }
  if (!ca_pem.empty() && ReadCerts(ca_pem).empty()) {
    return absl::InvalidArgumentError("the CA file holds no PEM certificate");
  }
  Bio out(BIO_new(BIO_s_mem()));
  bool ok =
      PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
  for (const Cert& cert : chain) ok = ok && PEM_write_bio_X509(out.get(), cert.get()) == 1;
  if (!ok) {
    ERR_clear_error();
    return absl::InternalError("could not re-encode the key and certificate");
  }
  return BioText(out.get());
}

// A new memory file holding `content` with mtime `mtime_sec`.
absl::StatusOr<int> MemoryFile(const std::string& content, int64_t mtime_sec) {
  int fd = memfd_create("walrus-tls", MFD_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "memfd_create for the TLS files");
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status s = ErrnoToStatus(errno, "writing the TLS memory file");
      ::close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  timespec times[2] = {{mtime_sec, 0}, {mtime_sec, 0}};
  if (::futimens(fd, times) != 0) {
    absl::Status s = ErrnoToStatus(errno, "setting the TLS memory file's mtime");
    ::close(fd);
    return s;
  }
  return fd;
}

std::string FdPath(int fd) { return fd < 0 ? "" : absl::StrCat("/proc/self/fd/", fd); }

}  // namespace

absl::Status ValidateTlsPems(absl::string_view cert_pem, absl::string_view key_pem,
                             absl::string_view ca_pem) {
  return KeyChain(cert_pem, key_pem, ca_pem).status();
}

ValidatedTlsFiles::ValidatedTlsFiles(Paths files, int key_chain_fd, int ca_fd)
    : files_(std::move(files)),
      key_chain_fd_(key_chain_fd),
      ca_fd_(ca_fd),
      key_chain_path_(FdPath(key_chain_fd)),
      ca_path_(FdPath(ca_fd)) {}

absl::StatusOr<std::unique_ptr<ValidatedTlsFiles>> ValidatedTlsFiles::Create(Paths files) {
  Raw seen = Read(files);
  absl::StatusOr<Usable> usable = Validate(files, seen);
  if (!usable.ok()) return usable.status();
  const int64_t mtime = static_cast<int64_t>(std::time(nullptr));
  absl::StatusOr<int> key_chain_fd = MemoryFile(usable->key_chain, mtime);
  if (!key_chain_fd.ok()) return key_chain_fd.status();
  int ca_fd = -1;
  if (!files.ca.empty()) {
    absl::StatusOr<int> fd = MemoryFile(usable->ca, mtime);
    if (!fd.ok()) {
      ::close(*key_chain_fd);
      return fd.status();
    }
    ca_fd = *fd;
  }
  std::unique_ptr<ValidatedTlsFiles> out(
      new ValidatedTlsFiles(std::move(files), *key_chain_fd, ca_fd));
  out->seen_ = std::move(seen);
  out->served_ = *std::move(usable);
  out->copy_mtime_sec_ = mtime;
  return out;
}

ValidatedTlsFiles::~ValidatedTlsFiles() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  if (key_chain_fd_ >= 0) ::close(key_chain_fd_);
  if (ca_fd_ >= 0) ::close(ca_fd_);
}

ValidatedTlsFiles::Raw ValidatedTlsFiles::Read(const Paths& files) {
  struct Named {
    const std::string& path;
    const char* flag;
    std::string* text;
  };
  Raw raw;
  for (Named f :
       {Named{files.cert, "--tls-cert-file", &raw.cert},
        Named{files.key, "--tls-key-file", &raw.key}, Named{files.ca, "--tls-ca-file", &raw.ca}}) {
    if (f.path.empty()) continue;
    absl::StatusOr<std::string> text = ReadFileToString(PosixFs(), f.path);
    if (!text.ok()) {
      raw.error =
          absl::Status(text.status().code(), absl::StrCat(f.flag, ": ", text.status().message()));
      return raw;
    }
    *f.text = std::move(*text);
  }
  return raw;
}

absl::StatusOr<ValidatedTlsFiles::Usable> ValidatedTlsFiles::Validate(const Paths& files,
                                                                      const Raw& raw) {
  if (!raw.error.ok()) return raw.error;
  absl::StatusOr<std::string> key_chain = KeyChain(raw.cert, raw.key, raw.ca);
  if (!key_chain.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-cert-file ", files.cert, ", --tls-key-file ", files.key,
                     files.ca.empty() ? "" : absl::StrCat(", --tls-ca-file ", files.ca), ": ",
                     key_chain.status().message()));
  }
  return Usable{*std::move(key_chain), raw.ca};
}

absl::Status ValidatedTlsFiles::PublishLocked(const Usable& next) {
  // A later mtime than every earlier copy: gRPC retries a read across a swap.
  copy_mtime_sec_ = std::max<int64_t>(copy_mtime_sec_ + 1, std::time(nullptr));
  struct Swap {
    int target;
    const std::string& content;
    std::string* served;
  };
  for (Swap swap : {Swap{ca_fd_, next.ca, &served_.ca},
                    Swap{key_chain_fd_, next.key_chain, &served_.key_chain}}) {
    if (swap.target < 0 || swap.content == *swap.served) continue;
    absl::StatusOr<int> fd = MemoryFile(swap.content, copy_mtime_sec_);
    if (!fd.ok()) return fd.status();
    // dup3 replaces the file behind the number in one step: a reader opens
    // the old copy or the new one, never a mix.
    int rc = ::dup3(*fd, swap.target, O_CLOEXEC);
    int err = errno;
    ::close(*fd);
    if (rc < 0) return ErrnoToStatus(err, "replacing the TLS memory file");
    *swap.served = swap.content;
  }
  return absl::OkStatus();
}

ValidatedTlsFiles::CheckResult ValidatedTlsFiles::Check() {
  Raw now = Read(files_);
  std::lock_guard<std::mutex> lock(mu_);
  if (now == seen_) return CheckResult::kUnchanged;
  seen_ = now;
  absl::StatusOr<Usable> next = Validate(files_, now);
  if (next.ok() && next->key_chain == served_.key_chain && next->ca == served_.ca) {
    return CheckResult::kUnchanged;  // back to what is served
  }
  absl::Status s = next.ok() ? PublishLocked(*next) : next.status();
  if (!s.ok()) {
    spdlog::error("TLS files changed but are not usable; still serving the previous ones: {}",
                  std::string(s.message()));
    return CheckResult::kRefused;
  }
  spdlog::info("TLS files changed: serving the new certificate from {}", files_.cert);
  return CheckResult::kServed;
}

void ValidatedTlsFiles::StartWatching(std::chrono::microseconds interval) {
  watcher_ = std::thread([this, interval] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_cv_.wait_for(lock, interval, [this] { return stop_; })) {
      lock.unlock();
      Check();
      lock.lock();
    }
  });
}

}  // namespace walrus
