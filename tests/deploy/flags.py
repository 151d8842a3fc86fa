"""walrusd's flags as its --help documents them, for the deploy tests."""
import re
import subprocess

# Flags COORDINATION.md assigns to issue 6 (security). The deployment files
# use them; until that branch is merged a walrusd without them makes the
# tests report SKIP instead of PASS. Delete an entry once walrusd has it.
PENDING_FLAGS = {
    "health-listen", "unix-socket-mode", "tls-cert-file", "tls-key-file", "tls-ca-file",
    "tls-require-client-cert", "tls-refresh-interval", "auth-token-file", "insecure",
}


def help_flags(walrusd):
    """Names of the flags `walrusd --help` lists (without the dashes)."""
    out = subprocess.run([walrusd, "--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"^\s+--([a-z0-9-]+)", out, re.M))
