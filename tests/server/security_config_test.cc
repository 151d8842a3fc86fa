// The security decisions walrusd makes before it binds anything: address
// parsing, what counts as loopback, the plaintext policy, flags that go
// together, the token file's rules and which TLS files are served.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "core/fs.h"
#include "gtest/gtest.h"
#include "server/auth_token.h"
#include "server/config.h"
#include "server/listeners.h"
#include "server/tls_files.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

absl::StatusOr<Config> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "walrusd");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  char* envp[] = {nullptr};
  return ParseConfig(static_cast<int>(argv.size()), argv.data(), envp);
}

TEST(IsLoopbackHost, LoopbackRangesAndLocalhost_AreLoopback) {
  for (const char* host :
       {"127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
}

TEST(IsLoopbackHost, WildcardsPublicAddressesAndNames_AreNot) {
  for (const char* host : {"0.0.0.0", "::", "", "10.0.0.1", "128.0.0.1", "::ffff:10.0.0.1",
                           "walrus.example", "localhost.evil.example", "127.0.0.1.nip.io"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

TEST(ParseListenAddress, FormsOfTcpAndUnix) {
  EXPECT_TRUE(ParseListenAddress("127.0.0.1:7070")->loopback);
  EXPECT_TRUE(ParseListenAddress("[::1]:7070")->loopback);
  EXPECT_FALSE(ParseListenAddress("[::]:7070")->loopback);
  EXPECT_FALSE(ParseListenAddress(":7070")->loopback);
  EXPECT_EQ(ParseListenAddress("unix:/run/w.sock")->path, "/run/w.sock");
  EXPECT_EQ(ParseListenAddress("unix:///run/w.sock")->path, "/run/w.sock");
}

TEST(ParseListenAddress, AbstractSocketsAndBadAddresses_AreRefused) {
  for (const char* spec :
       {"unix-abstract:w", "unix:@w", "unix:", "127.0.0.1", "host:port", "h:70000"}) {
    EXPECT_EQ(ParseListenAddress(spec).status().code(), absl::StatusCode::kInvalidArgument) << spec;
  }
  EXPECT_EQ(ParseListenAddress(std::string("unix:\0w", 7)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PlanListeners, PlaintextOffLoopback_RefusedWithoutInsecure_AllowedWithIt) {
  Config config;
  config.listen = {"127.0.0.1:7070", "0.0.0.0:7071"};
  absl::StatusOr<ListenerPlan> refused = PlanListeners(config);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("--insecure"), std::string::npos) << refused.status();
  config.insecure = true;
  absl::StatusOr<ListenerPlan> allowed = PlanListeners(config);
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_FALSE(allowed->listeners[0].plaintext_on_network);
  EXPECT_TRUE(allowed->listeners[1].plaintext_on_network);
}

TEST(PlanListeners, LocalSocket_OnAListenersPathOrAbstract_Refused) {
  Config config;
  config.listen = {"unix:/run/walrus/walrus.sock"};
  config.local_socket = "/run/walrus/walrus.sock";
  absl::StatusOr<ListenerPlan> same = PlanListeners(config);
  EXPECT_EQ(same.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(same.status().message().find("is also a --listen address"), std::string::npos)
      << same.status();
  config.local_socket = "@walrus";
  absl::StatusOr<ListenerPlan> abstract = PlanListeners(config);
  EXPECT_EQ(abstract.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(abstract.status().message().find("--local-socket @walrus"), std::string::npos)
      << abstract.status();
  config.local_socket = "/run/walrus/append.sock";
  EXPECT_TRUE(PlanListeners(config).ok());
}

TEST(PlanListeners, MetricsOffLoopback_RefusedWithoutAFlag_AllowedByInsecureMetricsOrInsecure) {
  Config config;
  config.metrics_listen = "0.0.0.0:9464";
  absl::StatusOr<ListenerPlan> refused = PlanListeners(config);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("--insecure-metrics"), std::string::npos)
      << refused.status();
  config.metrics_listen = "[::]:9464";
  EXPECT_EQ(PlanListeners(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.insecure_metrics = true;
  EXPECT_TRUE(PlanListeners(config).ok());
  config.insecure_metrics = false;
  config.insecure = true;
  EXPECT_TRUE(PlanListeners(config).ok());
  config.insecure = false;
  for (const char* loopback : {"127.0.0.1:9464", "[::1]:9464", "localhost:9464", ""}) {
    config.metrics_listen = loopback;
    EXPECT_TRUE(PlanListeners(config).ok()) << loopback;
  }
}

TEST(PlanListeners, TokenOverPlaintextOffLoopback_IsRefusedEvenWithInsecure) {
  testing::TempDir tmp;
  std::string tokens = tmp.Sub("tokens");
  testing::WriteFile(tokens, "t\n");
  Config config;
  config.listen = {"0.0.0.0:7071"};
  config.insecure = true;
  config.auth_token_file = tokens;
  EXPECT_EQ(PlanListeners(config).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PlanListeners, UnreadableTlsOrTokenFiles_StopTheStart) {
  Config config;
  config.listen = {"127.0.0.1:7070"};
  config.auth_token_file = "/nonexistent/tokens";
  EXPECT_FALSE(PlanListeners(config).ok());
  config.auth_token_file.clear();
  config.tls_cert_file = "/nonexistent/cert.pem";
  config.tls_key_file = "/nonexistent/key.pem";
  EXPECT_EQ(PlanListeners(config).status().code(), absl::StatusCode::kNotFound);
}

TEST(PlanListeners, NotPemCertificate_IsInvalidArgument) {
  testing::TempDir tmp;
  testing::WriteFile(tmp.Sub("cert"), "not a certificate");
  testing::WriteFile(tmp.Sub("key"), "-----BEGIN PRIVATE KEY-----\n");
  Config config;
  config.listen = {"127.0.0.1:7070"};
  config.tls_cert_file = tmp.Sub("cert");
  config.tls_key_file = tmp.Sub("key");
  EXPECT_EQ(PlanListeners(config).status().code(), absl::StatusCode::kInvalidArgument);
}

// Test certificates (make_test_certs.sh) in a directory of their own.
class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string cmd =
        std::string("bash ") + WALRUS_CERT_SCRIPT + " " + tmp_.Sub("certs") + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    Put("cert", Pem("server.pem"));
    Put("key", Pem("server.key"));
  }
  std::string Pem(const std::string& name) { return ReadAll(tmp_.Sub("certs/" + name)); }
  static std::string ReadAll(const std::string& path) {
    absl::StatusOr<std::string> text = ReadFileToString(PosixFs(), path);
    EXPECT_TRUE(text.ok()) << text.status();
    return text.value_or("");
  }
  // As a Secret volume or a careful operator does: a new file renamed over.
  void Put(const std::string& name, const std::string& content) {
    testing::WriteFile(tmp_.Sub(name + ".new"), content);
    ASSERT_EQ(std::rename(tmp_.Sub(name + ".new").c_str(), tmp_.Sub(name).c_str()), 0);
  }
  ValidatedTlsFiles::Paths Paths() { return {tmp_.Sub("cert"), tmp_.Sub("key"), ""}; }
  testing::TempDir tmp_;
};

TEST_F(TlsFilesTest, MismatchedOrGarbagePair_IsRefusedAtStart) {
  Put("key", Pem("server-rotated.key"));
  absl::StatusOr<std::unique_ptr<ValidatedTlsFiles>> files = ValidatedTlsFiles::Create(Paths());
  EXPECT_EQ(files.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(files.status().message().find("does not match"), std::string::npos) << files.status();
  Put("key", Pem("server.key"));
  Put("cert", "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n");
  EXPECT_EQ(ValidatedTlsFiles::Create(Paths()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TlsFilesTest, BadUpdate_IsRefusedOnce_AndThePreviousPairStaysServed) {
  absl::StatusOr<std::unique_ptr<ValidatedTlsFiles>> files = ValidatedTlsFiles::Create(Paths());
  ASSERT_TRUE(files.ok()) << files.status();
  ValidatedTlsFiles& tls = **files;
  const std::string served = ReadAll(tls.cert_path());
  EXPECT_EQ(tls.key_path(), tls.cert_path()) << "key and chain are one file";
  EXPECT_TRUE(ValidateTlsPems(served, served, "").ok()) << served;
  EXPECT_EQ(tls.Check(), ValidatedTlsFiles::CheckResult::kUnchanged);

  Put("cert", Pem("server-rotated.pem"));  // without its key
  EXPECT_EQ(tls.Check(), ValidatedTlsFiles::CheckResult::kRefused);
  EXPECT_EQ(tls.Check(), ValidatedTlsFiles::CheckResult::kUnchanged) << "logged once, not again";
  EXPECT_EQ(ReadAll(tls.cert_path()), served);
  Put("cert", "garbage");
  EXPECT_EQ(tls.Check(), ValidatedTlsFiles::CheckResult::kRefused);
  EXPECT_EQ(ReadAll(tls.cert_path()), served);
  std::remove(tmp_.Sub("key").c_str());
  EXPECT_EQ(tls.Check(), ValidatedTlsFiles::CheckResult::kRefused);
  EXPECT_EQ(tls.Check(), ValidatedTlsFiles::CheckResult::kUnchanged);

  Put("key", Pem("server-rotated.key"));
  Put("cert", Pem("server-rotated.pem"));
  EXPECT_EQ(tls.Check(), ValidatedTlsFiles::CheckResult::kServed);
  const std::string rotated = ReadAll(tls.cert_path());
  EXPECT_NE(rotated, served);
  EXPECT_TRUE(ValidateTlsPems(rotated, rotated, "").ok());
  EXPECT_FALSE(ValidateTlsPems(rotated, served, "").ok()) << "a different key";
}

TEST(SecurityFlags, CertWithoutKey_CaWithoutCert_RequireWithoutCa_AreRefused) {
  EXPECT_FALSE(Parse({"--tls-cert-file", "c"}).ok());
  EXPECT_FALSE(Parse({"--tls-key-file", "k"}).ok());
  EXPECT_FALSE(Parse({"--tls-ca-file", "ca"}).ok());
  EXPECT_FALSE(
      Parse({"--tls-cert-file", "c", "--tls-key-file", "k", "--tls-require-client-cert"}).ok());
  EXPECT_TRUE(Parse({"--tls-cert-file", "c", "--tls-key-file", "k", "--tls-ca-file", "ca",
                     "--tls-require-client-cert"})
                  .ok());
}

TEST(SecurityFlags, SocketModeOnly0600Or0660_RefreshAtLeastOneSecond) {
  EXPECT_EQ(Parse({"--unix-socket-mode", "0660"})->unix_socket_mode, 0660u);
  EXPECT_FALSE(Parse({"--unix-socket-mode", "0666"}).ok());
  EXPECT_FALSE(Parse({"--unix-socket-mode", "0700"}).ok());
  EXPECT_FALSE(Parse({"--tls-refresh-interval", "100ms"}).ok());
  EXPECT_FALSE(Parse({"--max-concurrent-streams", "0"}).ok());
}

TEST(SecurityFlags, Defaults_AreTheSafeOnes) {
  Config c;
  EXPECT_EQ(c.unix_socket_mode, 0600u);
  EXPECT_FALSE(c.insecure);
  EXPECT_GT(c.max_concurrent_streams, 0u);
  EXPECT_GT(c.max_connection_age.count(), 0);
  EXPECT_GT(c.handshake_timeout.count(), 0);
  EXPECT_GT(c.memory_quota_bytes, 0u);
}

TEST(ConstantTimeEquals, EqualOnlyForSameBytesAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secre"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), "a"));
}

TEST(ParseTokens, OnePerLine_TrimmedBlankLinesSkipped) {
  EXPECT_EQ(ParseTokens("  one \n\n\ttwo\r\n"), (std::vector<std::string>{"one", "two"}));
  EXPECT_TRUE(ParseTokens(" \n\n").empty());
}

TEST(TokenAuthenticator, EmptyFile_IsRefusedAtStart) {
  testing::TempDir tmp;
  testing::WriteFile(tmp.Sub("tokens"), "\n  \n");
  EXPECT_EQ(TokenAuthenticator::Create(tmp.Sub("tokens")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TokenAuthenticator, OnlyBearerWithAListedToken_IsAccepted) {
  testing::TempDir tmp;
  testing::WriteFile(tmp.Sub("tokens"), "alpha\nbeta\n");
  auto auth = TokenAuthenticator::Create(tmp.Sub("tokens"));
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE((*auth)->Accepts("Bearer alpha"));
  EXPECT_TRUE((*auth)->Accepts("Bearer beta"));
  EXPECT_FALSE((*auth)->Accepts("Bearer gamma"));
  EXPECT_FALSE((*auth)->Accepts("Bearer "));
  EXPECT_FALSE((*auth)->Accepts("alpha"));
  EXPECT_FALSE((*auth)->Accepts("Basic alpha"));
}

}  // namespace
}  // namespace walrus
