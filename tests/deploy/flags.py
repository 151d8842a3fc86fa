"""walrusd's flags as its --help documents them, for the deploy tests."""
import re
import subprocess


def help_flags(walrusd):
    """Names of the flags `walrusd --help` lists (without the dashes)."""
    out = subprocess.run([walrusd, "--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"^\s+--([a-z0-9-]+)", out, re.M))
