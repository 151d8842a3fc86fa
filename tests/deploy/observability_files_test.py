#!/usr/bin/env python3
"""Static checks of the Grafana dashboard and the Prometheus alert rules.

usage: observability_files_test.py REPO_DIR

Dashboard: a stable uid; datasource, job and instance template variables;
every panel on the templated datasource, with a unit, a description and
queries filtered by $job and $instance; the panels operators need (latency, throughput, fsync, segments, backups).
Rules: every alert has severity, summary, description, runbook and a
runbook_url whose anchor is a heading of docs/operations.md.
(Whether the queries run and return data: prometheus_e2e_test.py.)
"""
import json
import os
import re
import sys

import yaml

DASHBOARD_UID = "walrus-wal"
# Panel title -> a metric its queries must use.
REQUIRED_PANELS = {
    "fsync latency": "walrus_wal_fsync_duration_seconds_bucket",
    "Append latency p99": "walrus_append_duration_seconds_bucket",
    "Appends and entries per second": "walrus_appended_entries_total",
    "Entries and requests per fsync": "walrus_commit_batch_entries_sum",
    "Bytes written per second": "walrus_wal_write_bytes_total",
    "Last index saved": "walrus_wal_last_index_saved",
    "Segments": "walrus_wal_segments",
    "Segment cuts, releases and purges": "walrus_wal_purged_segments_total",
    "Backup copy rate and size": "walrus_backup_bytes_copied_total",
    "RPC errors by code": "walrus_rpc_requests_total",
    "Fail-stop": "walrus_wal_fail_stop",
    "Data directory free space": "walrus_data_dir_free_bytes",
}
REQUIRED_ALERTS = {"WalrusSlowFsync", "WalrusFailStop", "WalrusAppendErrors",
                   "WalrusPurgeBlocked", "WalrusDiskFilling"}

failures = []


def check(ok, message):
    if not ok:
        failures.append(message)
    return ok


def anchors(markdown):
    """GitHub-style anchors of the headings in `markdown`."""
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"#+\s+(.*)", line)
        if m:
            a = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add(a)
    return out


def main():
    repo = sys.argv[1]
    dash = json.load(open(os.path.join(repo, "deploy", "grafana", "walrus-dashboard.json")))
    check(dash.get("uid") == DASHBOARD_UID, f"dashboard uid is {dash.get('uid')}, want {DASHBOARD_UID}")
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    check(variables.get("datasource", {}).get("type") == "datasource"
          and variables["datasource"].get("query") == "prometheus",
          "no Prometheus datasource variable 'datasource'")
    for name in ("job", "instance"):
        v = variables.get(name, {})
        check(v.get("type") == "query" and v.get("includeAll") and v.get("multi"),
              f"no multi-value query variable '{name}' with All")
        check(v.get("datasource", {}).get("uid") == "${datasource}",
              f"variable {name} does not use the datasource variable")
    titles = {}
    for p in dash["panels"]:
        if p["type"] == "row":
            continue
        t = p.get("title", "")
        titles.setdefault(t, []).append(p)
        check(p.get("datasource", {}).get("uid") == "${datasource}",
              f"panel {t}: not on the templated datasource")
        check(p.get("fieldConfig", {}).get("defaults", {}).get("unit"), f"panel {t}: no unit")
        check(p.get("description"), f"panel {t}: no description")
        check(p.get("targets"), f"panel {t}: no queries")
        for target in p.get("targets", []):
            e = target.get("expr", "")
            check(target.get("datasource", {}).get("uid") == "${datasource}",
                  f"panel {t} query {target.get('refId')}: not on the templated datasource")
            for sel in ('job=~"$job"', 'instance=~"$instance"'):
                # every metric selector in the query carries the filter
                selectors = re.findall(r"walrus_[a-z_]+(\{[^}]*\})?", e)
                check(selectors and all(sel in s for s in selectors),
                      f"panel {t}: query {e!r} does not filter every metric by {sel}")
    for title, metric in REQUIRED_PANELS.items():
        if check(title in titles, f"dashboard lacks the panel '{title}'"):
            exprs = " ".join(t["expr"] for p in titles[title] for t in p["targets"])
            check(metric in exprs, f"panel '{title}' does not query {metric}")
    ids = [p["id"] for p in dash["panels"]]
    check(len(ids) == len(set(ids)), "panel ids are not unique")

    rules = yaml.safe_load(open(os.path.join(repo, "deploy", "prometheus", "walrus-alerts.yaml")))
    ops = os.path.join(repo, "docs", "operations.md")
    doc_anchors = anchors(open(ops).read()) if os.path.exists(ops) else set()
    check(doc_anchors, "docs/operations.md is missing")
    alerts = set()
    for group in rules["groups"]:
        for r in group["rules"]:
            name = r.get("alert")
            if not name:
                continue
            alerts.add(name)
            check(r.get("labels", {}).get("severity") in ("warning", "critical"),
                  f"{name}: severity is not warning or critical")
            a = r.get("annotations", {})
            for key in ("summary", "description", "runbook", "runbook_url"):
                check(a.get(key), f"{name}: no annotation {key}")
            url = a.get("runbook_url", "")
            check(url.startswith("docs/operations.md#") and url.split("#")[1] in doc_anchors,
                  f"{name}: runbook_url {url} names no heading of docs/operations.md")
    for name in REQUIRED_ALERTS - alerts:
        failures.append(f"alert {name} missing")

    for f in failures:
        print("FAIL:", f)
    if failures:
        return 1
    print(f"dashboard ({len(ids)} panels) and {len(alerts)} alerts: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
