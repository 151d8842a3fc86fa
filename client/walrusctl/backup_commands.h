// walrusctl backup, in its two forms (core/backup.h has the method):
//
//   walrusctl --server ADDR backup DEST [--json] [--chunk-bytes N]
//       online (WalClient::Backup): the daemon's Backup RPC pins the
//       segments and fixes the durable end; every chunk's CRC-32C is checked
//       as it arrives.
//   walrusctl backup DIR DEST [--json]
//       offline, on a WAL directory (or a walrusd data directory holding
//       wal/) that a live walrusd may own: locks the released files it reads,
//       reads every file to its end, keeps the last segment up to its last
//       valid record.
//
// Both write DEST atomically (DEST.tmp, fsync, rename, fsync of the parent)
// and publish it only once Verify finds it clean (and, online, once it holds
// the last entry acknowledged before the backup started). DEST must not
// exist: it is never overwritten. Progress on stderr when it is a terminal;
// --json prints a summary object on stdout.
//
// Exit codes (client/cli/cli.h): 0 ok, 1 usage/local error or DEST exists,
// 3 the log (or the copy) is corrupt, remote failures as RemoteExitCode.
#ifndef WALRUS_CLIENT_WALRUSCTL_BACKUP_COMMANDS_H_
#define WALRUS_CLIENT_WALRUSCTL_BACKUP_COMMANDS_H_

#include "client/cli/cli.h"
#include "client/client.h"

namespace walrus {

// args.positional: {DEST}.
int RemoteBackup(WalClient* client, const cli::Args& args);
// args.positional: {DIR, DEST}.
int OfflineBackupCommand(const cli::Args& args);

// The WAL directory of `dir`: `dir` itself if it holds segments, else
// `dir`/wal if that does (a walrusd data directory), else `dir`.
std::string ResolveWalDir(const std::string& dir);

}  // namespace walrus

#endif  // WALRUS_CLIENT_WALRUSCTL_BACKUP_COMMANDS_H_
