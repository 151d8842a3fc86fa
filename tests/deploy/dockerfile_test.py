#!/usr/bin/env python3
"""Offline checks of the top-level Dockerfile (no Docker engine runs here).

usage: dockerfile_test.py REPO_DIR WALRUSD WALRUSCTL

Checks: two named debian:12 stages; the build stage installs its packages by
running scripts/install-deps.sh (so the lists cannot drift) and nothing else;
the runtime stage installs only existing Debian runtime packages (no -dev, no
build tools) whose dependency closure provides every shared library the built
walrusd links against; a numeric non-root USER; walrusd as exec-form
ENTRYPOINT; the --data-dir on a VOLUME; EXPOSE matching the listener ports;
every flag in ENTRYPOINT/CMD is one `walrusd --help` documents; the socket
directory a VOLUME too; `apt-get clean` after the runtime install; and the
image's command really starts: the built walrusd runs with the CMD's flags
(paths moved to a temp dir, listeners to free loopback ports), serves on its
Unix socket with the given mode, answers on the health port and /metrics,
and exits 0 on SIGTERM.

Exit 0 pass, 1 fail.
"""
import json
import os
import re
import subprocess
import sys

from flags import help_flags
from smoke_run import smoke_run

# In every debian:12 image before any apt-get (dpkg/apt need them).
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}

failures = []


def check(ok, message):
    if not ok:
        failures.append(message)
    return ok


def instructions(path):
    """(instruction, argument) pairs, continuation lines joined."""
    out, pending = [], ""
    for raw in open(path, encoding="utf-8"):
        line = raw.rstrip("\n")
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue  # comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages(instrs):
    result = []
    for word, arg in instrs:
        if word == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", arg, re.IGNORECASE)
            result.append({"image": m.group(1), "name": m.group(2), "instrs": []})
        elif result:
            result[-1]["instrs"].append((word, arg))
    return result


def apt_installed(run):
    """Packages named by `apt-get install` in a RUN line."""
    pkgs = []
    for part in re.split(r"&&|;", run):
        words = part.split()
        if "apt-get" in words and "install" in words:
            after = words[words.index("install") + 1:]
            pkgs += [w for w in after if not w.startswith("-")]
    return pkgs


def install_deps_lists(script):
    text = open(script, encoding="utf-8").read()
    lists = {}
    for name in ("BUILD_PACKAGES", "TEST_PACKAGES"):
        m = re.search(name + r"=\((.*?)\)", text, re.S)
        body = re.sub(r"#.*", "", m.group(1)) if m else ""
        lists[name] = body.split()
    return lists


def exec_form(arg):
    try:
        value = json.loads(arg)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def apt_lists_available():
    r = subprocess.run(["apt-cache", "policy", "libc6"], capture_output=True, text=True)
    return r.returncode == 0 and "Candidate: (none)" not in r.stdout and "Candidate:" in r.stdout


def dependency_closure(packages):
    r = subprocess.run(
        ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
         "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"] + packages,
        capture_output=True, text=True)
    closure = set(packages)
    for line in r.stdout.splitlines():
        if line and not line.startswith(" "):
            closure.add(line.strip().strip("<>").split(":")[0])
        m = re.match(r"\s+(?:\|)?(?:Pre)?Depends:\s+<?([^>\s]+)>?", line)
        if m:
            closure.add(m.group(1).split(":")[0])
    return closure


def linked_packages(binary):
    """Debian packages owning the shared libraries `binary` loads (one dpkg
    call: it costs half a second however many paths it is given)."""
    r = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True)
    libs = {}
    for line in r.stdout.splitlines():
        m = re.search(r"=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)", line)
        if m:
            lib = m.group(1)
            if re.match(r"lib(a|t|l|ub)san\.so", os.path.basename(lib)):
                continue  # a sanitizer build's runtime: never in a release image
            real = os.path.realpath(lib)
            # merged /usr: dpkg may know the file under either name
            libs[lib] = {lib, real, "/usr" + lib, "/usr" + real}
    paths = sorted(set().union(*libs.values())) if libs else []
    q = subprocess.run(["dpkg", "-S"] + paths, capture_output=True, text=True)
    owner_of = {}
    for line in q.stdout.splitlines():
        pkg, _, path = line.partition(": ")
        owner_of[path.strip()] = pkg.split(":")[0].split(",")[0].strip()
    return {lib: next((owner_of[c] for c in sorted(cands) if c in owner_of), None)
            for lib, cands in libs.items()}


def main():
    repo, walrusd, walrusctl = sys.argv[1], sys.argv[2], sys.argv[3]
    dockerfile = os.path.join(repo, "Dockerfile")
    st = stages(instructions(dockerfile))

    # Stages.
    check(len(st) >= 2, f"want a multi-stage build, found {len(st)} stage(s)")
    for s in st:
        check(s["image"] in ("debian:12", "debian:bookworm") or s["image"].startswith(
            ("debian:12-", "debian:bookworm-")), f"stage {s['name']}: base {s['image']} is not Debian 12")
        check(s["name"] is not None, f"stage FROM {s['image']} has no name (FROM ... AS NAME)")
    build = next((s for s in st if s["name"] == "build"), None)
    runtime = st[-1] if st else None
    if not check(build is not None and runtime is not None and runtime is not build,
                 "need a stage named 'build' and a separate final runtime stage"):
        return report()

    # Build stage: packages come from scripts/install-deps.sh only.
    lists = install_deps_lists(os.path.join(repo, "scripts", "install-deps.sh"))
    check(lists["BUILD_PACKAGES"], "no BUILD_PACKAGES list in scripts/install-deps.sh")
    build_runs = [a for w, a in build["instrs"] if w == "RUN"]
    check(any(re.search(r"scripts/install-deps\.sh(\s|$|&)", r) and "--test" not in r
              for r in build_runs),
          "build stage must RUN scripts/install-deps.sh (without --test)")
    check(any(w == "COPY" and "scripts/install-deps.sh" in a for w, a in build["instrs"]),
          "build stage must COPY scripts/install-deps.sh before running it")
    for r in build_runs:
        extra = [p for p in apt_installed(r) if p not in lists["BUILD_PACKAGES"]]
        check(not extra, f"build stage installs packages not in install-deps.sh: {extra}")

    # Runtime stage: runtime libraries only, and enough of them.
    runtime_pkgs = [p for w, a in runtime["instrs"] if w == "RUN" for p in apt_installed(a)]
    check(runtime_pkgs, "runtime stage installs no packages")
    for p in runtime_pkgs:
        check(not p.endswith("-dev") and p not in lists["BUILD_PACKAGES"],
              f"runtime stage installs build package {p}")
    check(any(w == "COPY" and "--from=build" in a for w, a in runtime["instrs"]),
          "runtime stage must COPY --from=build")
    if apt_lists_available():
        r = subprocess.run(["apt-cache", "show", "--no-all-versions"] + runtime_pkgs,
                           capture_output=True, text=True)
        known = set(re.findall(r"^Package: (\S+)", r.stdout, re.M))
        for p in runtime_pkgs:
            check(p in known, f"runtime package {p} does not exist in Debian 12")
        closure = dependency_closure(runtime_pkgs) | BASE_IMAGE_PACKAGES
        for lib, owner in sorted(linked_packages(walrusd).items()):
            if check(owner is not None, f"{lib} (linked by walrusd) belongs to no package"):
                check(owner in closure, f"walrusd needs {lib} from {owner}, which the runtime "
                      "stage does not install (directly or as a dependency)")
    else:
        print("note: apt lists are empty (run apt-get update); runtime package existence "
              "and library coverage NOT checked", file=sys.stderr)
        failures.append("apt lists unavailable: cannot check the runtime packages")

    # User.
    users = [a for w, a in runtime["instrs"] if w == "USER"]
    if check(users, "runtime stage has no USER"):
        m = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1])
        check(m is not None, f"USER {users[-1]} is not numeric (uid[:gid])")
        if m:
            check(int(m.group(1)) != 0 and (m.group(2) is None or int(m.group(2)) != 0),
                  f"USER {users[-1]} is root")

    # Entrypoint and flags.
    entry = [exec_form(a) for w, a in runtime["instrs"] if w == "ENTRYPOINT"]
    cmd = [exec_form(a) for w, a in runtime["instrs"] if w == "CMD"]
    if not check(entry and entry[-1], "ENTRYPOINT missing or not in exec form"):
        return report()
    check(entry[-1][0] == "/usr/bin/walrusd", f"ENTRYPOINT runs {entry[-1][0]}, not walrusd")
    copied = " ".join(a for w, a in build["instrs"] if w == "RUN")
    check("/out/usr/bin/walrusd" in copied, "build stage does not install /out/usr/bin/walrusd")
    args = entry[-1][1:] + (cmd[-1] if cmd and cmd[-1] else [])
    values = {}
    for a in args:
        m = re.fullmatch(r"--([a-z0-9-]+)(?:=(.*))?", a)
        check(m is not None, f"argument {a!r} is not --flag=value")
        if m:
            values[m.group(1)] = m.group(2)
    documented = help_flags(walrusd)
    for flag in values:
        check(flag in documented, f"--{flag} is not a walrusd flag (not in walrusd --help)")
    check("data-dir" in values, "no --data-dir in ENTRYPOINT/CMD")
    volumes = [v for w, a in runtime["instrs"] if w == "VOLUME"
               for v in (exec_form(a) or a.split())]
    check(values.get("data-dir") in volumes,
          f"--data-dir {values.get('data-dir')} is not a VOLUME ({volumes})")
    # The socket's directory too: with a read-only root and no mount, walrusd
    # could not create the socket.
    for listen in [v for f, v in values.items() if f == "listen" and v.startswith("unix:")]:
        sock_dir = os.path.dirname(listen[len("unix:"):])
        check(sock_dir in volumes, f"socket directory {sock_dir} is not a VOLUME ({volumes})")
    # Not every debian:12 deletes the downloaded .debs itself.
    for r in (a for w, a in runtime["instrs"] if w == "RUN" and apt_installed(a)):
        check(re.search(r"apt-get clean", r), "the runtime stage's apt-get install is not "
              "followed by apt-get clean in the same RUN")
    exposed = {p.split("/")[0] for w, a in runtime["instrs"] if w == "EXPOSE" for p in a.split()}
    for flag in ("metrics-listen", "health-listen"):
        if values.get(flag):
            port = values[flag].rsplit(":", 1)[-1]
            check(port in exposed, f"--{flag} port {port} is not EXPOSEd ({sorted(exposed)})")
    if not failures:
        failures.extend(smoke_run(walrusd, walrusctl, values))
    return report()


def report():
    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print("Dockerfile: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
