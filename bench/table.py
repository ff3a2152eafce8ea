#!/usr/bin/env python3
"""Prints the Markdown table of a bench/results/*.json file (the newest by default)."""
import glob
import json
import sys

path = sys.argv[1] if len(sys.argv) > 1 else sorted(glob.glob("bench/results/*.json"))[-1]
result = json.load(open(path))
machine = result["machine"]
print("Results `%s`: PostgreSQL %s, %s cores, %.0f GiB, synchronous_commit = %s, shared_buffers = %s, "
      "%s s per run, %s rounds.\n" % (path, machine["postgres"], machine["cores"],
                                      machine["memory_kib"] / 1048576, machine["synchronous_commit"],
                                      machine["shared_buffers"], machine["seconds_per_run"], machine["rounds"]))
print("| workload | accounts | clients | cte_ctel tps | plain tps | ratio | p50 ms (ctel / plain) | p99 ms (ctel / plain) | failed |")
print("|---|---:|---:|---:|---:|---:|---|---|---:|")
latency = [row for row in result["rows"] if "engine" not in row and "p50_ms" in row]
catching_up = [row for row in result["rows"] if "changes_per_second" in row]
for row in result["rows"]:
    if "engine" not in row:
        continue
    engine, base = row["engine"], row["baseline"]
    unit = row["transfers_per_transaction"]
    tps = ("%.0f (%s transfers/s)" % (engine["tps"], "{:,.0f}".format(engine["transfers_per_second"]))
           if unit > 1 else "%.0f" % engine["tps"])
    btps = ("%.0f (%s transfers/s)" % (base["tps"], "{:,.0f}".format(base["transfers_per_second"]))
            if unit > 1 else "%.0f" % base["tps"])
    accounts = "{:,}".format(row["accounts"])
    if "journal_entries" in row:
        accounts += " (journal of {:,})".format(row["journal_entries"])
    print("| %s | %s | %d | %s | %s | **%.2f** | %.2f / %.2f | %.2f / %.2f | %d |" % (
        row["workload"], accounts, row["clients"], tps, btps, row["ratio"],
        engine["p50_ms"], base["p50_ms"], engine["p99_ms"], base["p99_ms"],
        engine["failed"] + engine["aborted_clients"]))
if latency:
    print("\n| change feed | transfers | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for row in latency:
        print("| %s | %d | %.1f | %.1f | %.1f |" % (row["workload"], row["transfers"], row["p50_ms"],
                                                   row["p99_ms"], row["max_ms"]))
for row in catching_up:
    print("\nBefore the feed's latency: %s changes waiting after the workloads, sequenced in %.1f s "
          "(%s a second), %d left." % ("{:,}".format(row["changes"]), row["seconds"],
                                       "{:,}".format(row["changes_per_second"]), row["left"]))
