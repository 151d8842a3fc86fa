#!/usr/bin/env python3
"""Starts the built walrusd with the flags a deployment file gives it.

usage: smoke_run.py WALRUSD WALRUSCTL --flag=value...

The data directory and Unix sockets move to a temp dir and TCP listeners to
free loopback ports; then walrusd must come up serving (/metrics says
walrus_serving 1), answer `walrusctl status` on each socket, create the
socket with --unix-socket-mode, listen on the health port, and exit 0 on
SIGTERM. Exit 0 pass, 1 fail (the reasons and walrusd's log on stdout).
"""
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smoke_run(walrusd, walrusctl, pairs):
    """Runs walrusd with `pairs` ([(flag, value)] or {flag: value}); the
    failures, [] if none."""
    pairs = list(pairs.items()) if isinstance(pairs, dict) else pairs
    values = dict(pairs)
    failures = []

    def check(ok, message):
        if not ok:
            failures.append(message)
        return ok

    tmp = tempfile.mkdtemp(prefix="walrus-docker-cmd-")
    args, sockets, local_sockets, tcp = [], [], [], {}
    for flag, value in pairs:
        if flag == "data-dir":
            value = os.path.join(tmp, "data")
        elif flag == "listen" and value.startswith("unix:"):
            value = "unix:" + os.path.join(tmp, os.path.basename(value[len("unix:"):]))
            sockets.append(value[len("unix:"):])
        elif flag == "local-socket" and value:
            value = os.path.join(tmp, os.path.basename(value))
            local_sockets.append(value)
        elif flag.endswith("listen") and value:
            tcp[flag] = free_port()
            value = f"127.0.0.1:{tcp[flag]}"
        args.append(f"--{flag}={value}")
    log = open(os.path.join(tmp, "walrusd.log"), "w+")
    proc = subprocess.Popen([walrusd] + args, stdout=log, stderr=subprocess.STDOUT)
    try:
        metrics = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                port = tcp.get("metrics-listen")
                if port is None or "walrus_serving 1" in urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode():
                    if all(os.path.exists(s) for s in sockets + local_sockets):
                        metrics = "ok"
                        break
            except OSError:
                pass
            time.sleep(0.2)
        if not check(metrics == "ok", f"walrusd {' '.join(args)} did not come up serving"):
            return failures
        for path in sockets:
            r = subprocess.run([walrusctl, "--server", "unix:" + path, "status"],
                               capture_output=True, text=True, timeout=30)
            check(r.returncode == 0, f"walrusctl status on unix:{path} failed: {r.stderr}")
            if "unix-socket-mode" in values:
                mode = stat.S_IMODE(os.stat(path).st_mode)
                check(mode == int(values["unix-socket-mode"], 8),
                      f"socket {path} has mode {mode:o}, not {values['unix-socket-mode']}")
        for path in local_sockets:
            st = os.stat(path)
            check(stat.S_ISSOCK(st.st_mode), f"--local-socket {path} is not a socket")
            if "unix-socket-mode" in values:
                check(stat.S_IMODE(st.st_mode) == int(values["unix-socket-mode"], 8),
                      f"local socket {path} has mode {stat.S_IMODE(st.st_mode):o}, "
                      f"not {values['unix-socket-mode']}")
        if "health-listen" in tcp:
            try:
                socket.create_connection(("127.0.0.1", tcp["health-listen"]), timeout=5).close()
            except OSError as e:
                failures.append(f"nothing listens on the --health-listen port: {e}")
        proc.send_signal(signal.SIGTERM)
        check(proc.wait(timeout=30) == 0, "walrusd did not exit 0 on SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if failures:
            log.seek(0)
            print(log.read()[-3000:])
        shutil.rmtree(tmp, ignore_errors=True)
    return failures


def main():
    walrusd, walrusctl, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    pairs = [tuple(a[2:].partition("=")[::2]) for a in args]
    failures = smoke_run(walrusd, walrusctl, pairs)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
