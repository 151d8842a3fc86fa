#!/usr/bin/env python3
"""Makes the `debian:12` base image locally, since no registry is reachable.

usage: base_image.py CACHE_DIR -- PODMAN...   (the podman command, with its flags)

debootstrap (bookworm, minbase) from the Debian mirror this machine's apt
uses, with the settings the official image applies (debuerreotype's
minimizing config, slim variant: no docs, man pages or locales; apt sources
on the same mirror), is tarred into CACHE_DIR and imported as
localhost/debian:12, which `FROM debian:12` resolves to when pulling is off.
The tarball's name carries a hash of this file, the mirrors and the month,
so it is made once and refreshed monthly; the import is skipped when the
image already comes from the same tarball.
"""
import datetime
import hashlib
import os
import re
import shutil
import subprocess
import sys

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY = "http://deb.debian.org/debian-security"

# debuerreotype-minimizing-config: what every official Debian image carries.
APT_CONF = {
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
    "docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'),
    "docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "docker-no-languages": 'Acquire::Languages "none";\n',
}
# debuerreotype-slimify: paths dpkg no longer unpacks (and which go now).
SLIM_EXCLUDES = ["/usr/share/doc/*", "/usr/share/groff/*", "/usr/share/info/*",
                 "/usr/share/linda/*", "/usr/share/lintian/overrides/*",
                 "/usr/share/locale/*", "/usr/share/man/*"]
SLIM_INCLUDES = ["/usr/share/doc/*/copyright", "/usr/share/locale/locale.alias"]


def mirrors():
    """(debian, debian-security) URIs of the machine's apt sources; the
    environment (WALRUS_DEBIAN_MIRROR, WALRUS_DEBIAN_SECURITY) overrides."""
    found = {}
    texts = []
    for d in ("/etc/apt/sources.list.d",):
        if os.path.isdir(d):
            texts += [open(os.path.join(d, f)).read() for f in sorted(os.listdir(d))
                      if f.endswith((".sources", ".list"))]
    if os.path.exists("/etc/apt/sources.list"):
        texts.append(open("/etc/apt/sources.list").read())
    for text in texts:
        # deb822 stanzas
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites:
                for s in suites.group(1).split():
                    found.setdefault(s, uris.group(1))
        # one-line format
        for m in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", text, re.M):
            found.setdefault(m.group(2), m.group(1))
    main = os.environ.get("WALRUS_DEBIAN_MIRROR") or found.get(SUITE, DEFAULT_MIRROR)
    security = (os.environ.get("WALRUS_DEBIAN_SECURITY") or
                found.get(SUITE + "-security", DEFAULT_SECURITY))
    return main.rstrip("/"), security.rstrip("/")


def slim(root):
    cfg = "".join(f"path-exclude {p}\n" for p in SLIM_EXCLUDES)
    cfg += "".join(f"path-include {p}\n" for p in SLIM_INCLUDES)
    with open(os.path.join(root, "etc/dpkg/dpkg.cfg.d/docker"), "w") as f:
        f.write(cfg)
    keep = {os.path.join(root, p.lstrip("/")) for p in ["/usr/share/locale/locale.alias"]}
    for pattern in SLIM_EXCLUDES:
        top = os.path.join(root, os.path.dirname(pattern).lstrip("/"))
        if not os.path.isdir(top):
            continue
        for name in os.listdir(top):
            path = os.path.join(top, name)
            if path in keep:
                continue
            if top.endswith("/usr/share/doc") and os.path.isdir(path) and not os.path.islink(path):
                for sub in os.listdir(path):  # keep each package's copyright
                    if sub != "copyright":
                        p = os.path.join(path, sub)
                        shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) \
                            else os.unlink(p)
            elif os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)


def make_rootfs(root, main, security):
    subprocess.run(["debootstrap", "--variant=minbase", "--components=main", SUITE, root, main],
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(root, "usr/sbin/policy-rc.d"), "w") as f:
        f.write("#!/bin/sh\nexit 101\n")  # no services start during apt-get install
    os.chmod(os.path.join(root, "usr/sbin/policy-rc.d"), 0o755)
    with open(os.path.join(root, "etc/dpkg/dpkg.cfg.d/docker-apt-speedup"), "w") as f:
        f.write("force-unsafe-io\n")
    for name, text in APT_CONF.items():
        with open(os.path.join(root, "etc/apt/apt.conf.d", name), "w") as f:
            f.write(text)
    slim(root)
    if os.path.exists(os.path.join(root, "etc/apt/sources.list")):
        os.unlink(os.path.join(root, "etc/apt/sources.list"))
    with open(os.path.join(root, "etc/apt/sources.list.d/debian.sources"), "w") as f:
        f.write(f"Types: deb\nURIs: {main}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n"
                "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
                f"Types: deb\nURIs: {security}\nSuites: {SUITE}-security\nComponents: main\n"
                "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    # The official image ships without package lists, caches or logs.
    for d in ("var/lib/apt/lists", "var/cache/apt", "var/log", "tmp", "var/tmp"):
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for name in files:
                if name != "lock":
                    os.unlink(os.path.join(dirpath, name))


def ensure_tarball(cache):
    main, security = mirrors()
    key = hashlib.sha256("\n".join([
        open(__file__, "rb").read().decode(), main, security,
        datetime.date.today().strftime("%Y-%m")]).encode()).hexdigest()[:16]
    tar = os.path.join(cache, f"debian12-{key}.tar")
    if os.path.exists(tar):
        return tar, key
    os.makedirs(cache, exist_ok=True)
    for old in os.listdir(cache):  # earlier months, earlier versions of this file
        if re.fullmatch(r"debian12-[0-9a-f]+\.tar(\.tmp)?", old):
            os.unlink(os.path.join(cache, old))
    root = os.path.join(cache, "rootfs")
    # An interrupted debootstrap can leave /proc or /sys mounted in its root.
    for line in reversed(open("/proc/mounts").read().splitlines()):
        mountpoint = line.split()[1]
        if mountpoint == root or mountpoint.startswith(root + "/"):
            subprocess.run(["umount", "-l", mountpoint], check=False)
    shutil.rmtree(root, ignore_errors=True)
    print(f"base_image: debootstrap {SUITE} from {main} (once; cached in {tar})", flush=True)
    make_rootfs(root, main, security)
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", root, "-cf", tar + ".tmp",
                    "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "."],
                   check=True)
    os.rename(tar + ".tmp", tar)
    shutil.rmtree(root)
    return tar, key


def ensure_image(cache, podman, env=None):
    """`podman` is the command with its global flags; `env` its environment."""
    tar, key = ensure_tarball(cache)
    r = subprocess.run(podman + ["image", "inspect", "--format", "{{.Comment}}",
                                 "localhost/debian:12"], capture_output=True, text=True, env=env)
    if r.returncode == 0 and key in r.stdout:
        return
    subprocess.run(podman + ["import", "--quiet", "--message", f"walrus base {key}",
                             "--change", 'CMD ["bash"]', tar, "localhost/debian:12"],
                   check=True, stdout=subprocess.DEVNULL, env=env)


def main():
    sep = sys.argv.index("--")
    ensure_image(sys.argv[1], sys.argv[sep + 1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
