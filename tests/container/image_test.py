#!/usr/bin/env python3
"""Builds the Dockerfile with podman from a clean copy of the tree and runs it.

usage: image_test.py REPO_DIR WALRUSCTL HEALTH_PROBE

Needs root, podman, runc and debootstrap (scripts/install-deps.sh
--container); without them it exits 77 (skip), unless
WALRUS_CONTAINER_REQUIRED=1 (.ci/run), which makes that a failure. Storage,
the debian:12 base tarball (tests/container/base_image.py), podman's layer
cache and the build's compiler cache live in WALRUS_CONTAINER_CACHE (default /var/tmp/walrus-container),
so a second run, even from a fresh clone, rebuilds only what changed. To
start over: `umount -l $CACHE/storage/overlay; rm -rf $CACHE`.

Checks, every container with --network=none (the socket is the way in; the
health and metrics ports are reached from inside the container's network
namespace with nsenter):
  - the runtime image holds no apt package cache or lists;
  - walrusd runs as uid/gid 65532; the socket in the bind-mounted /run/walrus
    is a socket of mode 0660; health says SERVING; /metrics answers;
  - append and read over the socket from the host (walrusctl);
  - a Raft-node container as another user reaches the shared socket with
    --group-add 65532 and is refused without it;
  - SIGTERM while appends are in flight: exit code 0, and a new container on
    the same directories reads back the appended entries 1..N, N at least
    the last index `walrusctl status` reported durable before the signal;
  - a root-owned host directory at /run/walrus makes walrusd exit (the
    documented failure) and podman's `:U` fixes it;
  - a read-only root file system without mounts works (the VOLUMEs).
Exit 0 pass, 1 fail, 77 skip.
"""
import base64
import fcntl
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import base_image  # noqa: E402

# Per run, so two runs sharing the cache (two CI jobs) never swap each
# other's image or containers; the tag goes at the end, the layers stay.
RUN_ID = f"ctest-{os.getpid()}"
IMAGE = f"localhost/walrus:{RUN_ID}"
UID = 65532
failures = []


def check(ok, message):
    if not ok:
        failures.append(message)
        print("FAIL:", message, flush=True)
    return ok


class Podman:
    def __init__(self, repo, cache):
        self.cmd = ["podman", "--root", os.path.join(cache, "storage"),
                    "--runroot", os.path.join(cache, "run"), "--storage-driver", "overlay"]
        # TMPDIR: where buildah keeps the build's cache mounts (the compiler
        # cache) and its temporary files, with the rest of the cache.
        os.makedirs(os.path.join(cache, "tmp"), exist_ok=True)
        self.env = dict(os.environ, TMPDIR=os.path.join(cache, "tmp"),
                        CONTAINERS_CONF=os.path.join(repo, "tests/container/containers.conf"))
        self.names = []

    def __call__(self, *args, check=True, timeout=120, **kw):
        r = subprocess.run(self.cmd + list(args), env=self.env, capture_output=True, text=True,
                           timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)}: exit {r.returncode}\n{r.stdout[-4000:]}"
                               f"\n{r.stderr[-4000:]}")
        return r

    def run(self, name, *args):
        """Starts a detached container of IMAGE; args go before the image. Its name."""
        name = f"walrus-{RUN_ID}-{name}"
        self.names.append(name)
        self("run", "-d", "--replace", "--name", name, "--network=none", *args, IMAGE)
        return name

    def pid(self, name):
        return int(self("inspect", "--format", "{{.State.Pid}}", name).stdout.strip())

    def stop(self, name):
        """SIGTERM, then the exit code (podman wait, bounded)."""
        self("kill", "--signal", "TERM", name)
        return int(self("wait", name, timeout=60).stdout.strip().splitlines()[-1])

    def logs(self, name):
        r = self("logs", name, check=False)
        return (r.stdout + r.stderr)[-3000:]

    def cleanup(self):
        for name in self.names:
            self("rm", "-f", "-v", name, check=False)
        self("untag", IMAGE, check=False)


def clean_tree(repo, dest):
    """What a fresh clone holds (tracked files plus untracked ones git does
    not ignore), mtimes kept so podman's layer cache sees unchanged files."""
    r = subprocess.run(["git", "-C", repo, "ls-files", "-z", "--cached", "--others",
                        "--exclude-standard"], capture_output=True)
    if r.returncode != 0:  # not a git checkout: everything but build output
        shutil.copytree(repo, dest, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", "build*", "node_modules", "data"))
        return
    for rel in sorted(set(r.stdout.decode().split("\0")) - {""}):
        src = os.path.join(repo, rel)
        if not os.path.lexists(src):
            continue  # deleted, not yet committed
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel), follow_symlinks=False)


def wait_for(what, predicate, seconds=60):
    """Polls `predicate` until true; False (and a failure) after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return check(False, f"timed out waiting for {what}")


def in_netns(pid, argv, timeout=30):
    return subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "--"] + argv,
                          capture_output=True, text=True, timeout=timeout)


def health(probe, pid):
    return in_netns(pid, [probe, "127.0.0.1:7071", "walrus.v1.WAL"]).stdout.strip()


def metrics(pid):
    return in_netns(pid, [sys.executable, "-c", "import sys, urllib.request; sys.stdout.write("
                          "urllib.request.urlopen('http://127.0.0.1:9464/metrics', timeout=5)"
                          ".read().decode())"]).stdout


def entry_line(index):
    data = base64.b64encode(f"entry {index} ".encode().ljust(200, b"w")).decode()
    return f'{{"kind":"entry","index":{index},"term":1,"type":0,"data":"{data}"}}'


METADATA = '{"kind":"metadata","data":"' + base64.b64encode(b"container test").decode() + '"}'


def read_entries(walrusctl, sock):
    r = subprocess.run([walrusctl, "--server", "unix:" + sock, "read", "--format=jsonl"],
                       capture_output=True, text=True, timeout=300)
    if not check(r.returncode == 0, f"walrusctl read failed: {r.stderr}"):
        return []
    return [line for line in r.stdout.splitlines() if '"kind":"entry"' in line]


def last_index(walrusctl, sock):
    r = subprocess.run([walrusctl, "--server", "unix:" + sock, "--timeout", "5", "status",
                        "--json"], capture_output=True, text=True, timeout=60)
    m = re.search(r'"last_index":(\d+)', r.stdout)
    return int(m.group(1)) if r.returncode == 0 and m else -1


def owner_ids(pid):
    status = open(f"/proc/{pid}/status").read()
    uids = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()
    gids = re.search(r"^Gid:\s+(.*)$", status, re.M).group(1).split()
    return {int(x) for x in uids}, {int(x) for x in gids}


def up(podman, probe, name, seconds=60):
    """Waits until the container's walrusd says SERVING: its pid, or None
    (a failure, with walrusd's log) if it exits or stays unhealthy."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pid = podman.pid(name)  # 0 once the container exited
        if pid == 0:
            break
        if health(probe, pid) == "SERVING":
            return pid
        time.sleep(0.2)
    check(False, f"{name}: walrusd did not come up SERVING\n{podman.logs(name)}")
    return None


def run_checks(podman, walrusctl, probe, tmp):
    run_dir, data_dir = os.path.join(tmp, "run"), os.path.join(tmp, "data")
    sock = os.path.join(run_dir, "walrus.sock")
    os.makedirs(run_dir)
    os.makedirs(data_dir)
    # The socket directory as docs/operations.md says: owned by 65532. The data
    # directory root-owned, with podman's :U (podman chowns it to the user).
    os.chown(run_dir, UID, UID)
    os.chmod(run_dir, 0o750)

    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    print(f"image {IMAGE}: {size / 1e6:.0f} MB", flush=True)
    r = podman("run", "--rm", "--network=none", "--entrypoint", "/bin/sh", IMAGE, "-c",
               "ls /var/cache/apt/archives/*.deb /var/lib/apt/lists/*_Packages* 2>/dev/null; :")
    check(r.stdout.strip() == "", f"apt's cache or lists left in the image:\n{r.stdout[:500]}")

    # --- first run: who, what mode, health, metrics, append and read ----------
    first = podman.run("first", "-v", f"{run_dir}:/run/walrus",
                       "-v", f"{data_dir}:/var/lib/walrus:U")
    pid = up(podman, probe, first)
    if pid is None:
        return
    uids, gids = owner_ids(pid)
    check(uids == {UID} and gids == {UID}, f"walrusd runs as uids {uids} gids {gids}, not {UID}")
    if check(os.path.exists(sock), f"no socket at {sock}"):
        st = os.stat(sock)
        check(stat.S_ISSOCK(st.st_mode), f"{sock} is not a socket")
        check(stat.S_IMODE(st.st_mode) == 0o660,
              f"socket mode {stat.S_IMODE(st.st_mode):o}, want 660")
        check(st.st_uid == UID and st.st_gid == UID, f"socket owned by {st.st_uid}:{st.st_gid}")
    text = metrics(pid)
    check(re.search(r"^walrus_serving 1$", text, re.M), "/metrics has no `walrus_serving 1`")

    lines = [METADATA] + [entry_line(i) for i in range(1, 101)]
    r = subprocess.run([walrusctl, "--server", "unix:" + sock, "append", "--jsonl", "-"],
                       input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, f"walrusctl append over the socket failed: {r.stderr}")
    got = read_entries(walrusctl, sock)
    check(got == lines[1:], f"read back {len(got)} entries, want the 100 appended")

    # --- the Raft node's container: another user, the shared socket volume ---
    client = ["run", "--rm", "--network=none", "--user", "1000:1000", "-v",
              f"{run_dir}:/run/walrus", "--entrypoint", "/usr/bin/walrusctl"]
    target = ["--server", "unix:/run/walrus/walrus.sock", "--timeout", "3", "status"]
    r = podman(*client, "--group-add", str(UID), IMAGE, *target, check=False)
    check(r.returncode == 0, f"a client with --group-add {UID} cannot use the socket: {r.stderr}")
    r = podman(*client, IMAGE, *target, check=False)
    check(r.returncode != 0, "a client outside group 65532 reached the 0660 socket")

    # --- SIGTERM with appends in flight ---------------------------------------
    appender = subprocess.Popen([walrusctl, "--server", "unix:" + sock, "--timeout", "5", "append",
                                 "--jsonl", "-", "--batch-entries", "20"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    stop_feeding = threading.Event()

    def feed():  # an endless log: appends are in flight whenever SIGTERM comes
        try:
            appender.stdin.write(METADATA + "\n")
            i = 101
            while not stop_feeding.is_set():
                appender.stdin.write(entry_line(i) + "\n")
                i += 1
        except (OSError, ValueError):  # walrusctl gone, or stdin closed below
            pass
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    durable = [-1]

    def progressed():
        durable[0] = last_index(walrusctl, sock)
        return durable[0] >= 2000
    wait_for("appends to reach index 2000", progressed, 120)
    code = podman.stop(first)
    check(code == 0, f"walrusd exited {code} on SIGTERM with appends in flight:\n"
          + podman.logs(first))
    stop_feeding.set()
    try:
        appender.stdin.close()
    except (OSError, ValueError):
        pass
    appender.wait(timeout=120)
    feeder.join(timeout=30)
    check(appender.returncode != 0, "the appender finished before SIGTERM: nothing was in flight")

    # --- restart on the same directories: everything acknowledged is there ----
    second = podman.run("restart", "-v", f"{run_dir}:/run/walrus",
                        "-v", f"{data_dir}:/var/lib/walrus")
    if up(podman, probe, second) is None:
        return
    got = read_entries(walrusctl, sock)
    check(len(got) >= durable[0], f"after the restart the log has {len(got)} entries, "
          f"but {durable[0]} were durable before SIGTERM")
    check(got == [entry_line(i) for i in range(1, len(got) + 1)],
          "after the restart the log is not the appended entries 1..N")
    print(f"SIGTERM at index >= {durable[0]}; {len(got)} entries read back", flush=True)
    code = podman.stop(second)
    check(code == 0, f"walrusd exited {code} on SIGTERM after the restart")

    # --- a root-owned /run/walrus: walrusd exits; podman's :U fixes it -------
    root_run = os.path.join(tmp, "root-run")
    os.makedirs(root_run)
    os.chmod(root_run, 0o755)
    bad = podman.run("root-owned-run", "-v", f"{root_run}:/run/walrus")
    code = int(podman("wait", bad, timeout=60).stdout.strip().splitlines()[-1])
    check(code != 0 and "Permission denied" in podman.logs(bad),
          f"walrusd on a root-owned /run/walrus: exit {code}, want a failure naming "
          "Permission denied")
    fixed = podman.run("run-U", "-v", f"{root_run}:/run/walrus:U")
    if up(podman, probe, fixed) is not None:
        check(podman.stop(fixed) == 0, "walrusd with /run/walrus:U did not exit 0 on SIGTERM")

    # --- read-only root, no mounts: the VOLUMEs take the writes ---------------
    # (No tmpfs on /run: Docker and Kubernetes do not add one either.)
    ro = podman.run("read-only", "--read-only", "--read-only-tmpfs=false")
    if up(podman, probe, ro) is not None:
        check(podman.stop(ro) == 0, "walrusd on a read-only root did not exit 0 on SIGTERM")


def main():
    repo, walrusctl, probe = sys.argv[1:4]
    required = os.environ.get("WALRUS_CONTAINER_REQUIRED") == "1"
    missing = [t for t in ("podman", "runc", "debootstrap", "nsenter") if not shutil.which(t)]
    if missing or os.geteuid() != 0:
        why = (f"missing {' '.join(missing)} (scripts/install-deps.sh --container)" if missing
               else "needs root (rootful podman, debootstrap)")
        print(("FAIL: " if required else "SKIP: ") + why)
        return 1 if required else 77
    cache = os.environ.get("WALRUS_CONTAINER_CACHE", "/var/tmp/walrus-container")
    os.makedirs(cache, exist_ok=True)
    podman = Podman(repo, cache)
    tmp = tempfile.mkdtemp(prefix="walrus-container-", dir="/var/tmp")
    try:
        t0 = time.monotonic()
        with open(os.path.join(cache, "lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one debootstrap at a time
            base_image.ensure_image(cache, podman.cmd, podman.env)
        t1 = time.monotonic()
        context = os.path.join(tmp, "context")
        clean_tree(repo, context)
        # Network for apt in the build only; the layers stay in the cache.
        r = podman("build", "--pull=never", "--network=host", "--build-arg", "BUILD_JOBS=2",
                   "-t", IMAGE, context, check=False, timeout=3600)
        t2 = time.monotonic()
        print(f"base image {t1 - t0:.0f} s, image build {t2 - t1:.0f} s", flush=True)
        if not check(r.returncode == 0, "podman build failed"):
            print(r.stdout[-6000:], r.stderr[-3000:])
            return 1
        # Dangling layers of older sources, a week old: the disk stays bounded.
        podman("image", "prune", "-f", "--filter", "until=168h", check=False)
        run_checks(podman, walrusctl, probe, tmp)
        print(f"checks {time.monotonic() - t2:.0f} s", flush=True)
    finally:
        podman.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        return 1
    print("container image: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
