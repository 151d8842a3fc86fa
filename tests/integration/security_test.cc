// walrusd's transport security against real processes: TLS and mutual TLS
// with certificates made here by openssl (make_test_certs.sh), certificate
// rotation without a restart, bearer tokens, Unix socket modes, the
// plaintext policy, the health-only listener and message limits. Everything
// runs on loopback and Unix sockets; the one non-loopback address (0.0.0.0)
// is refused before anything binds.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "health.grpc.pb.h"
#include "reflection.grpc.pb.h"
#include "tests/integration/daemon.h"
#include "tests/integration/rpc_util.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Writes `content` to `path` the way a Secret volume update does: a new file
// renamed over the old one.
void ReplaceFile(const std::string& path, const std::string& content) {
  std::string tmp = path + ".new";
  WriteFile(tmp, content);
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
}

// The certificates, made once for the whole binary.
class Certs {
 public:
  static const std::string& Dir() {
    static const std::string* dir = [] {
      auto* d = new std::string(absl::StrCat(std::filesystem::temp_directory_path().string(),
                                             "/walrus-certs-", getpid()));
      std::string cmd = absl::StrCat("bash ", WALRUS_CERT_SCRIPT, " ", *d, " 2>&1");
      if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << "make_test_certs.sh failed: " << cmd;
      cleanup_.made = true;
      return d;
    }();
    return *dir;
  }
  static std::string Path(const std::string& name) { return Dir() + "/" + name; }
  static std::string Pem(const std::string& name) { return ReadText(Path(name)); }

 private:
  // Removes the certificates when the test process exits.
  struct Cleanup {
    ~Cleanup() {
      if (made) std::filesystem::remove_all(Dir());
    }
    bool made = false;
  };
  static Cleanup cleanup_;
};

Certs::Cleanup Certs::cleanup_;

struct ClientCert {
  std::string ca = "ca.pem";
  std::string cert;  // "": no client certificate
  std::string key;
};

std::unique_ptr<v1::WAL::Stub> TlsStub(const std::string& address, const ClientCert& c) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = Certs::Pem(c.ca);
  if (!c.cert.empty()) {
    ssl.pem_cert_chain = Certs::Pem(c.cert);
    ssl.pem_private_key = Certs::Pem(c.key);
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a fresh connection, a fresh handshake
  return v1::WAL::NewStub(grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args));
}

grpc::Status CallStatus(v1::WAL::Stub* stub, const std::string& token = "",
                        std::string* peer_cn = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  v1::StatusRequest request;
  v1::StatusResponse response;
  grpc::Status status = stub->Status(&context, request, &response);
  if (peer_cn != nullptr && status.ok()) {
    std::vector<grpc::string_ref> cn =
        context.auth_context()->FindPropertyValues("x509_common_name");
    *peer_cn = cn.empty() ? "" : std::string(cn[0].data(), cn[0].size());
  }
  return status;
}

class SecurityTest : public ::testing::Test {
 protected:
  // A daemon with TLS on a loopback port (plus the harness's Unix socket).
  std::unique_ptr<Daemon> StartTls(std::vector<std::string> extra = {}) {
    address_ = absl::StrCat("127.0.0.1:", UnusedLoopbackPort());
    std::vector<std::string> flags = {"--listen", address_,         "--tls-cert-file",
                                      cert_,      "--tls-key-file", key_};
    flags.insert(flags.end(), extra.begin(), extra.end());
    auto daemon = std::make_unique<Daemon>(tmp_.Sub("data"), flags);
    EXPECT_TRUE(daemon->Start()) << daemon->log();
    return daemon;
  }
  std::vector<std::string> Mtls() {
    return {"--tls-ca-file", Certs::Path("ca.pem"), "--tls-require-client-cert"};
  }
  void SetUp() override {
    // The daemon's own copies, so rotation can replace them.
    cert_ = tmp_.Sub("server.pem");
    key_ = tmp_.Sub("server.key");
    WriteFile(cert_, Certs::Pem("server.pem"));
    WriteFile(key_, Certs::Pem("server.key"));
  }

  TempDir tmp_;
  std::string address_, cert_, key_;
};

const ClientCert kGoodClient{"ca.pem", "client.pem", "client.key"};

TEST_F(SecurityTest, Tls_ClientTrustingTheCa_Succeeds) {
  auto daemon = StartTls();
  EXPECT_TRUE(CallStatus(TlsStub(address_, ClientCert{}).get()).ok());
}

TEST_F(SecurityTest, Tls_ClientTrustingAnotherCa_RefusesTheServer) {
  auto daemon = StartTls();
  EXPECT_EQ(CallStatus(TlsStub(address_, ClientCert{"wrong-ca.pem", "", ""}).get()).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SecurityTest, Tls_PlaintextClientOnTlsPort_IsRefused) {
  auto daemon = StartTls();
  auto stub = v1::WAL::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  EXPECT_FALSE(CallStatus(stub.get()).ok());
}

TEST_F(SecurityTest, Mtls_ValidClientCertificate_Succeeds) {
  auto daemon = StartTls(Mtls());
  auto stub = TlsStub(address_, kGoodClient);
  EXPECT_TRUE(CreateWal(stub.get(), "meta").ok());
  EXPECT_TRUE(Append(stub.get(), MakeAppend(1, 3, 1, 0)).ok());
}

TEST_F(SecurityTest, Mtls_NoClientCertificate_IsRefusedEveryTime) {
  auto daemon = StartTls(Mtls());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(CallStatus(TlsStub(address_, ClientCert{}).get()).error_code(),
              grpc::StatusCode::UNAVAILABLE)
        << "attempt " << i;
  }
  EXPECT_TRUE(CallStatus(TlsStub(address_, kGoodClient).get()).ok()) << "the daemon still serves";
}

TEST_F(SecurityTest, Mtls_ClientCertificateFromAnotherCa_IsRefusedEveryTime) {
  auto daemon = StartTls(Mtls());
  for (int i = 0; i < 5; ++i) {
    auto stub = TlsStub(address_, ClientCert{"ca.pem", "wrong-client.pem", "wrong-client.key"});
    EXPECT_EQ(CreateWal(stub.get(), "meta").error_code(), grpc::StatusCode::UNAVAILABLE)
        << "attempt " << i;
  }
  EXPECT_FALSE(GetStatus(daemon->stub()).created()) << "nothing was written";
}

TEST_F(SecurityTest, Mtls_ExpiredClientCertificate_IsRefusedEveryTime) {
  auto daemon = StartTls(Mtls());
  for (int i = 0; i < 5; ++i) {
    auto stub = TlsStub(address_, ClientCert{"ca.pem", "expired-client.pem", "expired-client.key"});
    EXPECT_EQ(CreateWal(stub.get(), "meta").error_code(), grpc::StatusCode::UNAVAILABLE)
        << "attempt " << i;
  }
  EXPECT_FALSE(GetStatus(daemon->stub()).created()) << "nothing was written";
}

TEST_F(SecurityTest, Tls_RotatedCertificate_IsServedWithoutRestartOrFailedRpc) {
  auto daemon = StartTls({"--tls-refresh-interval", "1s"});
  std::string cn;
  ASSERT_TRUE(CallStatus(TlsStub(address_, ClientCert{}).get(), "", &cn).ok());
  ASSERT_EQ(cn, "walrusd");
  // Key first, then certificate, as two renames (the provider skips a
  // mismatched pair and keeps serving the old one meanwhile).
  ReplaceFile(key_, Certs::Pem("server-rotated.key"));
  ReplaceFile(cert_, Certs::Pem("server-rotated.pem"));
  int calls = 0;
  // Every call on a fresh connection (a fresh handshake) must succeed; the
  // new certificate must show up (the refresh interval is 1 s; the bound is
  // generous so a loaded machine does not fail the test).
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (cn != "walrusd-rotated" && std::chrono::steady_clock::now() < give_up) {
    grpc::Status status = CallStatus(TlsStub(address_, ClientCert{}).get(), "", &cn);
    ASSERT_TRUE(status.ok()) << "call " << calls
                             << " failed during rotation: " << status.error_message();
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(cn, "walrusd-rotated") << "after " << calls << " calls";
  EXPECT_EQ(daemon->log().find("critical"), std::string::npos) << daemon->log();
}

// How many times `needle` occurs in `text`.
size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST_F(SecurityTest, Tls_CertificateAndKeyThatDoNotMatch_AreRefusedAtStart) {
  WriteFile(key_, Certs::Pem("server-rotated.key"));
  Daemon daemon(tmp_.Sub("data"), {"--listen", absl::StrCat("127.0.0.1:", UnusedLoopbackPort()),
                                   "--tls-cert-file", cert_, "--tls-key-file", key_});
  EXPECT_EQ(daemon.RunToExit(), 64) << daemon.log();
  EXPECT_NE(daemon.log().find("the private key does not match the certificate"), std::string::npos)
      << daemon.log();
  EXPECT_FALSE(std::filesystem::exists(tmp_.Sub("data") + "/walrusd.lock"))
      << "refused before taking the data directory";
}

TEST_F(SecurityTest, Tls_GarbageKeyAtStart_IsRefused) {
  WriteFile(key_, "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n");
  Daemon daemon(tmp_.Sub("data"), {"--listen", absl::StrCat("127.0.0.1:", UnusedLoopbackPort()),
                                   "--tls-cert-file", cert_, "--tls-key-file", key_});
  EXPECT_EQ(daemon.RunToExit(), 64) << daemon.log();
  EXPECT_NE(daemon.log().find("no PEM private key"), std::string::npos) << daemon.log();
}

TEST_F(SecurityTest, Tls_NewCertificateWithoutItsKeyOrGarbage_KeepsServingThePreviousPair) {
  auto daemon = StartTls({"--tls-refresh-interval", "1s"});
  constexpr char kRefused[] = "TLS files changed but are not usable";
  // Every call on a fresh connection (a fresh handshake) must succeed with
  // the first certificate until walrusd has logged `refusals` refusals.
  auto serve_old_until_refused = [&](size_t refusals) {
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    int calls = 0;
    while (Count(daemon->log(), kRefused) < refusals &&
           std::chrono::steady_clock::now() < give_up) {
      std::string cn;
      grpc::Status status = CallStatus(TlsStub(address_, ClientCert{}).get(), "", &cn);
      ASSERT_TRUE(status.ok()) << "call " << calls << ": " << status.error_message() << "\n"
                               << daemon->log();
      ASSERT_EQ(cn, "walrusd");
      ++calls;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(Count(daemon->log(), kRefused), refusals) << daemon->log();
  };
  ReplaceFile(cert_, Certs::Pem("server-rotated.pem"));  // its key is not there yet
  ASSERT_NO_FATAL_FAILURE(serve_old_until_refused(1));
  ReplaceFile(cert_, "garbage\n");
  ASSERT_NO_FATAL_FAILURE(serve_old_until_refused(2));
  // The matching pair arrives: served, with no failed call on the way.
  ReplaceFile(key_, Certs::Pem("server-rotated.key"));
  ReplaceFile(cert_, Certs::Pem("server-rotated.pem"));
  std::string cn = "walrusd";
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (cn != "walrusd-rotated" && std::chrono::steady_clock::now() < give_up) {
    grpc::Status status = CallStatus(TlsStub(address_, ClientCert{}).get(), "", &cn);
    ASSERT_TRUE(status.ok()) << status.error_message();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(cn, "walrusd-rotated") << daemon->log();
  // Each bad state was logged once, not at every refresh. (A refusal between
  // the last two renames -- the new key with the garbage certificate -- is a
  // third state and may be logged.)
  EXPECT_LE(Count(daemon->log(), kRefused), 3u) << daemon->log();
}

class TokenTest : public SecurityTest {
 protected:
  void SetUp() override {
    SecurityTest::SetUp();
    token_file_ = tmp_.Sub("tokens");
    WriteFile(token_file_, "first-token\n");
    daemon_ = std::make_unique<Daemon>(tmp_.Sub("data"),
                                       std::vector<std::string>{"--auth-token-file", token_file_});
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  }
  std::string token_file_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(TokenTest, MissingToken_IsUnauthenticated) {
  EXPECT_EQ(CallStatus(daemon_->stub()).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CreateWal(daemon_->stub(), "meta").error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(TokenTest, WrongToken_IsUnauthenticatedAndWritesNothing) {
  for (const char* wrong : {"first-toke", "first-token2", "FIRST-TOKEN", "x"}) {
    EXPECT_EQ(CallStatus(daemon_->stub(), wrong).error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << wrong;
  }
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Basic first-token");
  v1::CreateRequest request;
  request.set_metadata("meta");
  v1::CreateResponse response;
  EXPECT_EQ(daemon_->stub()->Create(&context, request, &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(CallStatus(daemon_->stub(), "first-token").ok());
  EXPECT_FALSE(std::filesystem::exists(daemon_->wal_dir())) << "nothing was written";
}

TEST_F(TokenTest, RightToken_Succeeds_AndNeverAppearsInTheLog) {
  EXPECT_TRUE(CallStatus(daemon_->stub(), "first-token").ok());
  EXPECT_EQ(daemon_->log().find("first-token"), std::string::npos) << daemon_->log();
}

TEST_F(TokenTest, TokenFileChanged_NewTokenAccepted_RemovedTokenRefused) {
  ReplaceFile(token_file_, "second-token\n");
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!CallStatus(daemon_->stub(), "second-token").ok() &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(CallStatus(daemon_->stub(), "second-token").ok());
  EXPECT_EQ(CallStatus(daemon_->stub(), "first-token").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(SecurityTest, Token_OverLoopbackTcp_IsRequired) {
  std::string tokens = tmp_.Sub("tokens");
  WriteFile(tokens, "tcp-token\n");
  std::string address = absl::StrCat("127.0.0.1:", UnusedLoopbackPort());
  Daemon daemon(tmp_.Sub("data"), {"--listen", address, "--auth-token-file", tokens});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  auto stub = v1::WAL::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  EXPECT_EQ(CallStatus(stub.get()).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CallStatus(stub.get(), "wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(CallStatus(stub.get(), "tcp-token").ok());
}

TEST_F(SecurityTest, Token_WithMutualTls_BothAreRequired) {
  std::string tokens = tmp_.Sub("tokens");
  WriteFile(tokens, "tls-token\n");
  std::vector<std::string> flags = Mtls();
  flags.insert(flags.end(), {"--auth-token-file", tokens});
  auto daemon = StartTls(flags);
  EXPECT_EQ(CallStatus(TlsStub(address_, kGoodClient).get()).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(CallStatus(TlsStub(address_, kGoodClient).get(), "tls-token").ok());
}

// Runs `command`; its stdout and stderr, and the exit code in *code.
std::string RunShell(const std::string& command, int* code) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  int status = pclose(pipe);
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// The streaming calls carry the token too: an online backup with
// --token-file is not refused as unauthenticated.
TEST_F(TokenTest, Walrusctl_OnlineBackupWithToken_Succeeds) {
  const std::string ctl =
      absl::StrCat(WALRUSCTL, " --server ", daemon_->target(), " --token-file ", token_file_);
  WriteFile(tmp_.Sub("log.jsonl"),
            "{\"kind\":\"metadata\",\"data\":\"bQ==\"}\n"
            "{\"kind\":\"entry\",\"index\":1,\"term\":1,\"type\":0,\"data\":\"YQ==\"}\n");
  int code = 0;
  std::string out = RunShell(absl::StrCat(ctl, " append --jsonl ", tmp_.Sub("log.jsonl")), &code);
  ASSERT_EQ(code, 0) << out;
  out = RunShell(absl::StrCat(ctl, " backup ", tmp_.Sub("backup")), &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out.find("bearer token"), std::string::npos) << out;
}

TEST_F(SecurityTest, Walrusctl_OverMutualTlsWithToken_FencesAndStaleEpochIsRefused) {
  std::string tokens = tmp_.Sub("tokens");
  WriteFile(tokens, "ctl-token\n");
  std::vector<std::string> flags = Mtls();
  flags.insert(flags.end(), {"--auth-token-file", tokens});
  auto daemon = StartTls(flags);
  const std::string ctl =
      absl::StrCat(WALRUSCTL, " --server ", address_, " --tls-ca-file ", Certs::Path("ca.pem"),
                   " --tls-cert-file ", Certs::Path("client.pem"), " --tls-key-file ",
                   Certs::Path("client.key"));
  int code = 0;
  std::string out = RunShell(ctl + " status", &code);
  EXPECT_NE(code, 0) << "no token: " << out;
  EXPECT_NE(out.find("UNAUTHENTICATED"), std::string::npos) << out;
  out = RunShell(absl::StrCat(ctl, " --token-file ", tokens, " fence"), &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("writer epoch 1 issued"), std::string::npos) << out;
  out =
      RunShell(absl::StrCat(ctl, " --token-file ", tokens, " snapshot --index 0 --term 0"), &code);
  EXPECT_EQ(code, 6) << "epoch 0 is stale now: " << out;
  EXPECT_NE(out.find("stale writer epoch 0"), std::string::npos) << out;
  out = RunShell(absl::StrCat(ctl, " --token-file ", tokens, " status"), &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("writer epoch: 1"), std::string::npos) << out;
  out = RunShell(absl::StrCat(WALRUSCTL, " --server ", address_, " --tls-ca-file ",
                              Certs::Path("ca.pem"), " --token-file ", tokens, " status"),
                 &code);
  EXPECT_EQ(code, 5) << "no client certificate: the handshake fails: " << out;
}

mode_t SocketMode(const Daemon& daemon) {
  struct stat st {};
  std::string path = daemon.target().substr(5);
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  return st.st_mode & 07777;
}

TEST(UnixSocket, DefaultMode_Is0600) {
  TempDir tmp;
  Daemon daemon(tmp.Sub("data"));
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  EXPECT_EQ(SocketMode(daemon), 0600u);
}

TEST(UnixSocket, Mode0660_IsApplied) {
  TempDir tmp;
  Daemon daemon(tmp.Sub("data"), {"--unix-socket-mode", "0660"});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  EXPECT_EQ(SocketMode(daemon), 0660u);
}

TEST(UnixSocket, OtherMode_IsRefusedAsUsageError) {
  TempDir tmp;
  Daemon daemon(tmp.Sub("data"), {"--unix-socket-mode", "0666"});
  EXPECT_EQ(daemon.RunToExit(), 64) << daemon.log();
}

TEST(UnixSocket, AbstractSocket_IsRefused) {
  for (const char* spec : {"unix-abstract:walrus-test", "unix:@walrus-test"}) {
    TempDir tmp;
    Daemon daemon(tmp.Sub("data"), {"--listen", spec});
    EXPECT_EQ(daemon.RunToExit(), 64) << spec << "\n" << daemon.log();
    EXPECT_NE(daemon.log().find("abstract Unix sockets are refused"), std::string::npos)
        << daemon.log();
  }
}

TEST(PlaintextPolicy, NonLoopbackAddressWithoutInsecure_IsRefusedBeforeBinding) {
  TempDir tmp;
  int port = UnusedLoopbackPort();
  Daemon daemon(tmp.Sub("data"), {"--listen", absl::StrCat("0.0.0.0:", port)});
  EXPECT_EQ(daemon.RunToExit(), 64) << daemon.log();
  EXPECT_NE(daemon.log().find("refusing plaintext on a non-loopback address"), std::string::npos)
      << daemon.log();
  EXPECT_FALSE(std::filesystem::exists(tmp.Sub("data") + "/walrusd.lock"))
      << "refused before taking the data directory";
}

TEST(PlaintextPolicy, MetricsOnNonLoopbackAddressWithoutFlag_IsRefusedBeforeBinding) {
  TempDir tmp;
  Daemon daemon(tmp.Sub("data"),
                {"--metrics-listen", absl::StrCat("0.0.0.0:", UnusedLoopbackPort())});
  EXPECT_EQ(daemon.RunToExit(), 64) << daemon.log();
  EXPECT_NE(daemon.log().find("--insecure-metrics"), std::string::npos) << daemon.log();
  EXPECT_FALSE(std::filesystem::exists(tmp.Sub("data") + "/walrusd.lock"))
      << "refused before taking the data directory";
}

TEST(PlaintextPolicy, LoopbackTcpWithoutFlags_StillServes) {
  TempDir tmp;
  std::string address = absl::StrCat("127.0.0.1:", UnusedLoopbackPort());
  Daemon daemon(tmp.Sub("data"), {"--listen", address});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  auto stub = v1::WAL::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  EXPECT_TRUE(CallStatus(stub.get()).ok());
}

TEST(HealthListener, ServesHealthWithoutToken_AndNoWalService) {
  TempDir tmp;
  std::string tokens = tmp.Sub("tokens");
  WriteFile(tokens, "t0ken\n");
  std::string health = absl::StrCat("127.0.0.1:", UnusedLoopbackPort());
  Daemon daemon(tmp.Sub("data"), {"--auth-token-file", tokens, "--health-listen", health});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  auto channel = grpc::CreateChannel(health, grpc::InsecureChannelCredentials());
  auto health_stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("walrus.v1.WAL");
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = health_stub->Check(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  auto wal_stub = v1::WAL::NewStub(channel);
  EXPECT_EQ(CallStatus(wal_stub.get(), "t0ken").error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

// Asks `channel`'s reflection service for its services. The status of the
// call; the names listed in *services.
grpc::Status ListServicesByReflection(const std::shared_ptr<grpc::Channel>& channel,
                                      std::vector<std::string>* services) {
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto stream = stub->ServerReflectionInfo(&context);
  grpc::reflection::v1alpha::ServerReflectionRequest request;
  request.set_list_services("*");
  stream->Write(request);
  stream->WritesDone();
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  while (stream->Read(&response)) {
    for (const auto& service : response.list_services_response().service()) {
      services->push_back(service.name());
    }
  }
  return stream->Finish();
}

TEST(HealthListener, ServesNoReflection_WhileTheMainListenerDoes) {
  TempDir tmp;
  std::string main = absl::StrCat("127.0.0.1:", UnusedLoopbackPort());
  std::string health = absl::StrCat("127.0.0.1:", UnusedLoopbackPort());
  Daemon daemon(tmp.Sub("data"), {"--listen", main, "--health-listen", health});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  std::vector<std::string> services;
  grpc::Status status = ListServicesByReflection(
      grpc::CreateChannel(main, grpc::InsecureChannelCredentials()), &services);
  ASSERT_TRUE(status.ok()) << "the main listener serves reflection: " << status.error_message();
  EXPECT_NE(std::find(services.begin(), services.end(), "walrus.v1.WAL"), services.end());
  services.clear();
  auto channel = grpc::CreateChannel(health, grpc::InsecureChannelCredentials());
  status = ListServicesByReflection(channel, &services);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
      << status.error_message() << "; listed " << services.size() << " services";
  EXPECT_TRUE(services.empty());
  auto wal_stub = v1::WAL::NewStub(channel);
  EXPECT_EQ(CallStatus(wal_stub.get()).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  status = grpc::health::v1::Health::NewStub(channel)->Check(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST(Limits, OversizedMessage_IsRefused_DaemonStaysHealthy_NothingWritten) {
  TempDir tmp;
  Daemon daemon(tmp.Sub("data"), {"--max-message-bytes", "65536"});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  ASSERT_TRUE(CreateWal(daemon.stub(), "meta").ok());
  grpc::Status status = Append(daemon.stub(), MakeAppend(1, 4, 1, 0, 32 << 10));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_EQ(GetStatus(daemon.stub()).last_index(), 0u);
  EXPECT_TRUE(Append(daemon.stub(), MakeAppend(1, 4, 1, 0, 1024)).ok()) << "still serving";
  EXPECT_EQ(GetStatus(daemon.stub()).last_index(), 4u);
}

TEST(Limits, EveryLimitFlag_IsAccepted) {
  TempDir tmp;
  Daemon daemon(tmp.Sub("data"), {"--max-concurrent-streams", "8", "--max-connection-idle", "10m",
                                  "--max-connection-age", "1h", "--handshake-timeout", "5s",
                                  "--memory-quota-bytes", "67108864"});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  EXPECT_TRUE(CreateWal(daemon.stub(), "meta").ok());
}

}  // namespace
}  // namespace walrus::testing
