#!/usr/bin/env python3
"""End to end: a real Prometheus scrapes a real walrusd under load.

usage: prometheus_e2e_test.py REPO_DIR BUILD_DIR

Starts walrusd (Unix socket, metrics on a free loopback port) and Debian's
prometheus (free loopback port, temporary storage, 1 s scrape and rule
evaluation, loading deploy/prometheus/walrus-alerts.yaml), drives load with
walrus-bench (unary and stream) plus two failing RPCs, then evaluates through
/api/v1/query every query of deploy/grafana/walrus-dashboard.json (template
variables substituted) and every alert expression. Each must evaluate without
error, every rule must load healthy and none fire, every dashboard query must
return data, and every metric an alert uses must be exported by walrusd.

Exit 0 pass, 1 fail. Knob: WALRUS_E2E_LOAD_SECONDS (default 4).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

RATE_INTERVAL = "30s"  # what Grafana's $__rate_interval is with a 1 s scrape, and more
DEADLINE = time.monotonic() + 240  # the whole test; CTest's TIMEOUT is above it

failures = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_for(what, probe, seconds):
    end = min(time.monotonic() + seconds, DEADLINE)
    last = None
    while time.monotonic() < end:
        try:
            value = probe()
            if value:
                return value
        except (OSError, urllib.error.URLError, ValueError) as e:
            last = e
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what} ({last})")


class Prom:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def api(self, path, **params):
        url = f"{self.base}/api/v1/{path}?" + urllib.parse.urlencode(params)
        try:
            body = http_get(url)
        except urllib.error.HTTPError as e:  # 400/422: bad query, body says why
            body = e.read().decode()
        return json.loads(body)

    def query(self, expr):
        return self.api("query", query=expr)


def metric_names(expr):
    return set(re.findall(r"\bwalrus_[a-z_]+\b", expr))


def exported_families(metrics_text):
    names = set()
    for line in metrics_text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            names.add(m.group(1))
            if m.group(2) == "histogram":
                names |= {m.group(1) + s for s in ("_bucket", "_sum", "_count")}
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def dashboard_queries(path, variables):
    dash = json.load(open(path))
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            expr = t["expr"]
            for name, value in variables.items():
                expr = expr.replace("$" + name, value).replace("${" + name + "}", value)
            check_no_vars = re.search(r"\$\{?\w+", expr)
            if check_no_vars:
                failures.append(f"panel {p['title']}: unknown variable {check_no_vars.group(0)}")
            out.append((f"panel '{p['title']}' {t['refId']}", expr))
    return dash, out


def run(cmd, timeout, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def main():
    repo, build = sys.argv[1], sys.argv[2]
    load_seconds = int(os.environ.get("WALRUS_E2E_LOAD_SECONDS", "4"))
    walrusd = os.path.join(build, "server", "walrusd")
    bench = os.path.join(build, "client", "bench", "walrus-bench")
    walrusctl = os.path.join(build, "client", "walrusctl", "walrusctl")
    rules = os.path.abspath(os.path.join(repo, "deploy", "prometheus", "walrus-alerts.yaml"))
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        print("FAIL: no prometheus binary (scripts/install-deps.sh --test installs it)")
        return 1

    tmp = tempfile.mkdtemp(prefix="walrus-prom-e2e-")
    procs = []
    try:
        metrics_port, prom_port = free_port(), free_port()
        sock = f"unix:{tmp}/walrus.sock"
        wlog = open(os.path.join(tmp, "walrusd.log"), "w")
        procs.append(subprocess.Popen(
            [walrusd, f"--data-dir={tmp}/data", f"--listen={sock}",
             f"--metrics-listen=127.0.0.1:{metrics_port}", "--segment-size-bytes=1048576"],
            stdout=wlog, stderr=subprocess.STDOUT))
        wait_for("walrusd /metrics", lambda: http_get(
            f"http://127.0.0.1:{metrics_port}/metrics"), 20)

        target = f"127.0.0.1:{metrics_port}"
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [rules],
            "scrape_configs": [{"job_name": "walrus", "static_configs": [{"targets": [target]}]}],
        }
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            yaml.safe_dump(config, f)
        plog = open(os.path.join(tmp, "prometheus.log"), "w")
        procs.append(subprocess.Popen(
            [prometheus, f"--config.file={tmp}/prometheus.yml", f"--storage.tsdb.path={tmp}/tsdb",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--storage.tsdb.retention.time=1h"],
            stdout=plog, stderr=subprocess.STDOUT))
        prom = Prom(prom_port)
        wait_for("prometheus ready", lambda: http_get(f"{prom.base}/-/ready"), 60)
        wait_for("the walrus target up", lambda: any(
            r["value"][1] == "1" for r in prom.query('up{job="walrus"}')["data"]["result"]), 30)

        # Load: unary then stream appends, one failing append and one failing read.
        for mode, extra in (("unary", ["--clients", "2"]), ("stream", ["--inflight", "32"])):
            r = run([bench, "--server", sock, "--mode", mode, "--duration", str(load_seconds),
                     "--metrics", target, "--entry-bytes", "1024"] + extra, load_seconds + 60)
            if r.returncode != 0:
                failures.append(f"walrus-bench --mode {mode} failed: {r.stdout}{r.stderr}")
        gap = '{"kind":"entry","index":999999999,"term":999,"type":0,"data":"eA=="}\n'
        run([walrusctl, "--server", sock, "append", "--jsonl", "-"], 30, input=gap)
        run([walrusctl, "--server", sock, "read", "--snapshot-index", "1",
             "--snapshot-term", "999999"], 30)
        exported = exported_families(http_get(f"http://{target}/metrics"))
        # Two scrapes after the last RPC, so rates and increases see it.
        scraped = time.time()
        wait_for("two scrapes after the load", lambda: float(prom.query(
            'timestamp(walrus_build_info{job="walrus"})')["data"]["result"][0]["value"][1])
            > scraped + 2, 30)

        # Template variables the way Grafana resolves them.
        jobs = prom.api("label/job/values", **{"match[]": "walrus_build_info"})["data"]
        instances = prom.api("label/instance/values",
                             **{"match[]": 'walrus_build_info{job=~"walrus"}'})["data"]
        if jobs != ["walrus"] or instances != [target]:
            failures.append(f"template variables resolve to job={jobs} instance={instances}")
        dash, queries = dashboard_queries(
            os.path.join(repo, "deploy", "grafana", "walrus-dashboard.json"),
            {"job": "walrus", "instance": re.escape(target).replace("\\", "\\\\"),
             "__rate_interval": RATE_INTERVAL, "__interval": "1s", "datasource": "prometheus"})

        for where, expr in queries:
            r = prom.query(expr)
            if r.get("status") != "success":
                failures.append(f"{where}: {expr}\n    error: {r.get('error')}")
                continue
            if r["data"]["result"]:
                continue
            missing = {m for m in metric_names(expr) if m not in exported}
            failures.append(f"{where}: no data for {expr}"
                            + (f" (walrusd lacks {sorted(missing)})" if missing else ""))

        # Alerts are quiet on a healthy walrusd, so "no data" proves nothing:
        # every metric they use must be one walrusd exports.
        for group in yaml.safe_load(open(rules))["groups"]:
            for rule in group["rules"]:
                r = prom.query(rule["expr"])
                if r.get("status") != "success":
                    failures.append(f"alert {rule.get('alert')}: {r.get('error')}")
                for m in sorted(metric_names(rule["expr"]) - exported):
                    failures.append(f"alert {rule.get('alert')} uses {m}, which walrusd "
                                    "does not export")
        loaded = prom.api("rules")["data"]["groups"]
        rules_loaded = [r for g in loaded for r in g["rules"]]
        if not rules_loaded:
            failures.append("prometheus loaded no rules from walrus-alerts.yaml")
        for r in rules_loaded:
            if r.get("health") != "ok":
                failures.append(f"rule {r.get('name')} health {r.get('health')}: {r.get('lastError')}")
            if r.get("state") == "firing":
                failures.append(f"alert {r.get('name')} fires on a healthy walrusd")

        for f in failures:
            print("FAIL:", f)
        if failures:
            print(open(os.path.join(tmp, "walrusd.log")).read()[-3000:])
            return 1
        print(f"{len(queries)} dashboard queries and {len(rules_loaded)} rules evaluated "
              f"against {target} scraped by prometheus on :{prom_port}")
        return 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except TimeoutError as e:
        print("FAIL:", e)
        sys.exit(1)
