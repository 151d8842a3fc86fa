// walrusctl's remote commands: they talk to a walrusd over gRPC through
// WalClient. Each returns walrusctl's exit code (client/cli/cli.h) after printing
// its result on stdout or its error on stderr.
//
//   append --jsonl FILE|-   replay a `dump --format=jsonl` into the daemon
//   read                    print the daemon's log as `dump` prints a directory
//   snapshot --index N --term T
//   release --index N
//   status [--json]
//   fence                   issue a new writer epoch
#ifndef WALRUS_CLIENT_WALRUSCTL_REMOTE_COMMANDS_H_
#define WALRUS_CLIENT_WALRUSCTL_REMOTE_COMMANDS_H_

#include <string>

#include "client/cli/cli.h"
#include "client/client.h"

namespace walrus {

// `append --jsonl`: the metadata line (if any) creates the WAL (Create; the
// same metadata again is fine) and must come before the first entry; entries
// go in batches (--batch-entries, default 1000; --batch-bytes, default
// 4 MiB), each one Append; the last hard state read goes with the last batch,
// so the daemon never holds a commit index beyond the entries it has. A
// malformed line stops the command (exit 1) naming its number; the batches
// before it were appended.
int RemoteAppend(WalClient* client, const cli::Args& args);
int RemoteRead(WalClient* client, const cli::Args& args);
int RemoteEntries(WalClient* client, const cli::Args& args);
int RemoteFollow(WalClient* client, const cli::Args& args);
int RemoteSnapshot(WalClient* client, const cli::Args& args);
int RemoteRelease(WalClient* client, const cli::Args& args);
int RemoteStatus(WalClient* client, const cli::Args& args);
// Prints the new writer epoch.
int RemoteFence(WalClient* client, const cli::Args& args);

}  // namespace walrus

#endif  // WALRUS_CLIENT_WALRUSCTL_REMOTE_COMMANDS_H_
