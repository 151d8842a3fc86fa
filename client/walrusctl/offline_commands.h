// walrusctl's offline commands: they work on a WAL directory, with no
// walrusd, and may run while a walrusd owns it (all but repair only read).
// Each returns walrusctl's exit code (client/cli/cli.h) after printing its
// result on stdout or its error on stderr. The backup command's offline form
// is in client/walrusctl/backup_commands.h.
//
//   dump DIR      print what ReadAll returns, in a dump format
//   verify DIR    check every segment
//   status DIR    the directory's segments, indexes, hard state, markers
//   repair DIR    truncate a torn tail, keeping <segment>.broken
#ifndef WALRUS_CLIENT_WALRUSCTL_OFFLINE_COMMANDS_H_
#define WALRUS_CLIENT_WALRUSCTL_OFFLINE_COMMANDS_H_

#include "client/cli/cli.h"

namespace walrus {

int OfflineDump(const cli::Args& args);
int OfflineVerify(const cli::Args& args);
int OfflineStatus(const cli::Args& args);
int OfflineRepair(const cli::Args& args);

}  // namespace walrus

#endif  // WALRUS_CLIENT_WALRUSCTL_OFFLINE_COMMANDS_H_
