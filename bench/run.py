#!/usr/bin/env python3
"""Benchmarks of cte_ctel side by side with plain SQL (see bench/README.md).

Each workload and its plain-SQL baseline run alternately (baseline, engine, engine, baseline,
...) with pgbench against the same server, at 1 and 8 clients, over 10,000 accounts and over 10
hot ones. Prints a table of throughput, p50/p99 latency and the ratio to the baseline; writes
the figures as JSON under bench/results/ and the chart as docs/performance.png.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time

PGBIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
PAIR = "\\set a random(1, :n)\n\\set b 1 + (:a + random(0, :n - 2)) % :n\n"

TRANSFER = ("SELECT cte_ctel.cte_transfer('a' || :a, 'a' || :b, 0.01, 'USD');",
            "SELECT plain.transfer('a' || :a, 'a' || :b, 0.01);")
# A random entry of the heavy account (its 200,000 postings' entries alternate @world, a1 from
# bench.heavy's first id: a1's are the even offsets; cte_account_statement refuses an after_entry
# that is not one of the account's).
STATEMENT_PAGE = "\\set k 2 * random(1, 195000)\n"
EVENT3 = ("SELECT bench.event(3, 'a' || :a, 'a' || :b);",
          "SELECT plain.transfers(3, 'a' || :a, 'a' || :b, 0.01);")
DEPOSIT = ("SELECT cte_ctel.cte_deposit('a' || :a, 0.01, 'USD');", "SELECT plain.deposit('a' || :a, 0.01);")
BATCH_FIRST = "\\set first 1 + 10 * random(0, :n / 10 - 1)\n"


def workload(name, statements, per_txn, clients, accounts, options="", database=None, journal=None,
             around=None):
    """One workload: the engine's statement and its baseline's, run at each client count over each
    account set; `options` are the engine session's settings (PGOPTIONS); `database` and
    `journal` (entries already in it) are for the scale runs; `around` is SQL run before the
    workload and SQL run after it."""
    return {"name": name, "engine": statements[0], "baseline": statements[1], "per_txn": per_txn,
            "clients": clients, "accounts": accounts, "options": options, "database": database,
            "journal": journal, "around": around}


WORKLOADS = [
    workload("cte_transfer", TRANSFER, 1, (1, 8), (10000, 10)),
    # The same with metadata on every transfer (kept on its event, in the GIN index of
    # cte_find_events): what metadata costs.
    workload("cte_transfer with metadata", (
        "SELECT cte_ctel.cte_transfer('a' || :a, 'a' || :b, 0.01, 'USD', NULL,"
        " ('{\"order\": \"o-' || :a || '\", \"market\": \"m-' || :b || '\"}')::jsonb);",
        TRANSFER[1]), 1, (1, 8), (10000, 10)),
    # The same with a balance monitor on every wallet (one that never fires: the bench's
    # accounts hold a billion): what a monitored wallet's posting costs. cte_transfer above is
    # what the others pay (a trigger's WHEN on their own flag).
    workload("cte_transfer, every wallet monitored", TRANSFER, 1, (1, 8), (10000, 10), around=(
        "SELECT count(cte_ctel.cte_create_monitor('a' || i, 'USD', 'below', 0)) FROM generate_series(1, 10000) i",
        "SELECT count(cte_ctel.cte_drop_monitor(id)) FROM cte_ctel.cte_monitors")),
    workload("event, 1 step", ("SELECT bench.event(1, 'a' || :a, 'a' || :b);",
                               "SELECT plain.transfers(1, 'a' || :a, 'a' || :b, 0.01);"), 1, (1, 8), (10000, 10)),
    workload("event, 3 steps", EVENT3, 3, (1, 8), (10000, 10)),
    workload("lien create, capture", ("CALL bench.lien_capture('a' || :a, 'a' || :b);",
                                      "CALL plain.lien_capture('a' || :a, 'a' || :b, 0.05);"), 1, (1, 8), (10000, 10)),
    workload("deposit via @world", DEPOSIT, 1, (1, 8), (10000, 10)),
    workload("batch of 1,000, against a set-based batch", (BATCH_FIRST + "SELECT bench.batch(:first);",
             BATCH_FIRST + "SELECT plain.batch_set(:first);"), 1000, (1,), (10000,)),
    workload("batch of 1,000, against a PL/pgSQL loop", (BATCH_FIRST + "SELECT bench.batch(:first);",
             BATCH_FIRST + "SELECT plain.batch(:first);"), 1000, (1,), (10000,)),
    # cte_transfers (SPEC §11): the same 1,000 transfers as independent items of one call.
    workload("cte_transfers of 1,000, against a set-based batch", (BATCH_FIRST + "SELECT bench.transfers(:first);",
             BATCH_FIRST + "SELECT plain.batch_set(:first);"), 1000, (1,), (10000,)),
]

# Against pgledger (a plain PL/pgSQL ledger), when bench/run found a copy of it to load.
PGLEDGER = [
    workload("cte_transfer, against pgledger", (TRANSFER[0],
             "SELECT count(*) FROM pgledger_create_transfer('a' || :a, 'a' || :b, 0.01);"), 1, (1, 8), (10000,)),
    workload("cte_transfers of 1,000, against pgledger_create_transfers", (
             BATCH_FIRST + "SELECT bench.transfers(:first);",
             BATCH_FIRST + "SELECT bench.pgledger_transfers(:first);"), 1000, (1,), (10000,)),
]

# bench/run scale: the same transfer over a small, fresh ledger and over a large one.
SCALE = [
    workload("cte_transfer, small ledger", TRANSFER, 1, (1, 8), (1000,), database="cte_scale_small", journal=2000),
    workload("cte_transfer, large ledger", TRANSFER, 1, (1, 8), (1000000,), database="cte_scale_large",
             journal=10000000),
    # Account a1 of the large ledger has 200,000 more postings (bench/scale.sql): a page of 100
    # of its entries from a random place, and its balance as of an instant, on a journal of
    # 10,400,000 entries.
    workload("cte_account_statement, a page of 100 of an account with 200,000 entries",
             (STATEMENT_PAGE + "SELECT count(*) FROM cte_ctel.cte_account_statement('a1', 'USD', NULL, NULL,"
              " (SELECT engine_first FROM bench.heavy) + :k, 100);",
              STATEMENT_PAGE + "SELECT count(*) FROM (SELECT e.*, (SELECT string_agg(o.account_id, ', ')"
              " FROM plain.entries o WHERE o.posting_id = e.posting_id AND o.id <> e.id) AS counterparty"
              " FROM plain.entries e WHERE e.account_id = 'a1' AND e.currency = 'USD'"
              " AND e.id > (SELECT plain_first FROM bench.heavy) + :k ORDER BY e.id LIMIT 100) page;"),
             1, (1,), (1000000,), database="cte_scale_large", journal=10400000),
    workload("cte_balance_at, an account with 200,000 entries",
             ("SELECT cte_ctel.cte_balance_at('a1', 'USD', now());",
              "SELECT balance_after FROM plain.entries WHERE account_id = 'a1' AND currency = 'USD'"
              " ORDER BY id DESC LIMIT 1;"),
             1, (1,), (1000000,), database="cte_scale_large", journal=10400000),
]


def pgbench(args, statement, clients, accounts, seconds, logdir, tag, options="", database=None):
    """One pgbench run; returns (tps, latencies in ms, failed transactions, aborted clients)."""
    script = os.path.join(logdir, tag + ".sql")
    with open(script, "w") as handle:
                handle.write(PAIR + statement + "\n")
    prefix = os.path.join(logdir, tag)
    command = [os.path.join(PGBIN, "pgbench"), "-n", "-h", args.host, "-p", str(args.port),
               "-U", "postgres", "-c", str(clients), "-j", str(min(clients, 2)), "-T",
               str(seconds), "-f", script, "-D", "n=%d" % accounts, "--log",
               "--log-prefix=" + prefix, database or args.database]
    run = subprocess.run(command, capture_output=True, text=True, cwd=logdir,
                         env=dict(os.environ, PGOPTIONS=options))
    tps = 0.0
    failed = 0  # counted from the per-transaction logs below
    for line in run.stdout.splitlines():
        if line.startswith("tps = "):
            tps = float(line.split()[2])
    aborted = run.stderr.count("aborted")
    if run.returncode != 0 and tps == 0.0:
        raise SystemExit("pgbench failed:\n" + run.stdout + run.stderr)
    latencies = []
    for path in glob.glob(prefix + ".[0-9]*"):  # pgbench logs: PREFIX.PID[.THREAD]
        with open(path) as handle:
            for line in handle:
                latency = line.split()[2] if line.strip() else ""
                if latency.isdigit():
                    latencies.append(int(latency) / 1000.0)
                elif latency:
                    failed += 1  # pgbench writes "failed" (or the error kind) for a failed one
        os.remove(path)
    return tps, latencies, failed, aborted


def percentile(values, fraction):
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(args, logdir, save, rows):
    for spec in SCALE if args.scale else WORKLOADS + (PGLEDGER if args.pgledger else []):
        name, per_txn = spec["name"], spec["per_txn"]
        if args.only and name != args.only:
            continue
        if spec["around"]:
            run_sql(args, spec["around"][0])
        for accounts in spec["accounts"]:
            for clients in spec["clients"]:
                figures = {"engine": ([], [], 0, 0), "baseline": ([], [], 0, 0)}
                for round_number in range(args.rounds):
                    order = ("baseline", "engine") if round_number % 2 == 0 else ("engine", "baseline")
                    for side in order:
                        statement = spec[side]
                        options = spec["options"] if side == "engine" else ""
                        slug = "".join(c if c.isalnum() else "_" for c in name)  # pgbench reads "@"
                        tag = "%s-%s-%d-%d-%d" % (slug, side, clients, accounts, round_number)
                        tps, latencies, failed, aborted = pgbench(
                            args, statement, clients, accounts, args.seconds, logdir, tag, options,
                            spec["database"])
                        all_tps, all_lat, all_failed, all_aborted = figures[side]
                        figures[side] = (all_tps + [tps], all_lat + latencies,
                                         all_failed + failed, all_aborted + aborted)
                row = {"workload": name, "accounts": accounts, "clients": clients,
                       "transfers_per_transaction": per_txn, "engine_settings": spec["options"]}
                if spec["journal"] is not None:
                    row["journal_entries"] = spec["journal"]
                for side in ("engine", "baseline"):
                    all_tps, all_lat, failed, aborted = figures[side]
                    row[side] = {"tps": round(statistics.mean(all_tps), 1),
                                 "transfers_per_second": round(statistics.mean(all_tps) * per_txn, 1),
                                 "p50_ms": round(percentile(all_lat, 0.50), 2),
                                 "p99_ms": round(percentile(all_lat, 0.99), 2),
                                 "failed": failed, "aborted_clients": aborted}
                base = row["baseline"]["tps"]
                row["ratio"] = round(row["engine"]["tps"] / base, 3) if base else None
                rows.append(row)
                save(rows)
                print("%-22s %6d accounts %d clients  engine %8.1f tps  baseline %8.1f tps  ratio %.2f  "
                      "p50 %.2f/%.2f ms  p99 %.2f/%.2f ms  failed %d/%d" % (
                          name, accounts, clients, row["engine"]["tps"], base, row["ratio"] or 0,
                          row["engine"]["p50_ms"], row["baseline"]["p50_ms"], row["engine"]["p99_ms"],
                          row["baseline"]["p99_ms"], row["engine"]["failed"] + row["engine"]["aborted_clients"],
                          row["baseline"]["failed"] + row["baseline"]["aborted_clients"]), flush=True)
        if spec["around"]:
            run_sql(args, spec["around"][1])
    return rows


def run_sql(args, sql):
    subprocess.run([os.path.join(PGBIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", args.host,
                    "-p", str(args.port), "-U", "postgres", "-d", args.database, "-c", sql],
                   check=True, capture_output=True)


def feed_latency(args, logdir, loaded):
    """Commit to consumer: a producer commits transfers (about 50 a second, each with its own
    reference) and notes when each commit returned; a consumer LISTENs on cte_events and reads
    cte_changes from its cursor whenever woken, noting when each reference first appears. With
    `loaded`, pgbench runs transfers at 8 clients meanwhile. Returns latencies in ms."""
    import select
    import threading
    import time
    import psycopg
    conninfo = "host=%s port=%d dbname=%s user=postgres" % (args.host, args.port, args.database)
    consumer = psycopg.connect(conninfo, autocommit=True)
    consumer.execute("LISTEN cte_events")
    cursor = consumer.execute("SELECT coalesce(max(position), 0) FROM cte_ctel.cte_change_log").fetchone()[0]
    committed, seen, done = {}, {}, threading.Event()
    tag = "lat%d-%s" % (int(time.time()), "loaded" if loaded else "idle")

    def consume():
        nonlocal cursor
        while not done.is_set() or len(seen) < len(committed):
            select.select([consumer.pgconn.socket], [], [], 0.5)
            rows = consumer.execute("SELECT position, reference FROM cte_ctel.cte_changes(%s, 1000)",
                                    (cursor,)).fetchall()
            now = time.monotonic()
            for position, reference in rows:
                cursor = max(cursor, position)
                if reference and reference.startswith(tag) and reference not in seen:
                    seen[reference] = now
            if done.is_set() and time.monotonic() - stop_at > 10:
                break

    load = None
    if loaded:
        script = os.path.join(logdir, "latency-load.sql")
        with open(script, "w") as handle:
            handle.write(PAIR + TRANSFER[0] + "\n")
        load = subprocess.Popen([os.path.join(PGBIN, "pgbench"), "-n", "-h", args.host, "-p",
                                 str(args.port), "-U", "postgres", "-c", "8", "-j", "2", "-T",
                                 str(args.seconds + 5), "-f", script, "-D", "n=10000", args.database],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=logdir)
        time.sleep(1)
    stop_at = time.monotonic() + 3600
    thread = threading.Thread(target=consume)
    thread.start()
    producer = psycopg.connect(conninfo, autocommit=True)
    started = time.monotonic()
    number = 0
    while time.monotonic() - started < args.seconds:
        number += 1
        reference = "%s-%d" % (tag, number)
        producer.execute("SELECT cte_ctel.cte_transfer('a1', 'a2', 0.01, 'USD', %s)", (reference,))
        committed[reference] = time.monotonic()
        time.sleep(0.02)
    stop_at = time.monotonic()
    done.set()
    thread.join()
    if load:
        load.wait()
    producer.close()
    consumer.close()
    lost = [r for r in committed if r not in seen]
    if lost:
        raise SystemExit("feed latency: %d committed transfers never reached the consumer" % len(lost))
    return [(seen[r] - committed[r]) * 1000.0 for r in committed]


def psql_value(args, sql):
    return subprocess.run([os.path.join(PGBIN, "psql"), "-X", "-A", "-t", "-h", args.host, "-p",
                           str(args.port), "-U", "postgres", "-d", args.database, "-c", sql],
                          capture_output=True, text=True).stdout.strip()


def catch_up_feed(args, save, rows):
    """Waits for the feed to sequence what the workloads left (the bulk ones leave tens of
    thousands of changes), so that its latency is measured on a feed that keeps up; records how
    many changes were waiting and how fast the worker sequenced them."""
    count = "SELECT count(*) FROM cte_ctel.cte_change_outbox"
    backlog = int(psql_value(args, count) or 0)
    started = time.monotonic()
    left = backlog
    while left > 0 and time.monotonic() - started < 600:
        time.sleep(0.5)
        left = int(psql_value(args, count) or 0)
    seconds = time.monotonic() - started
    row = {"workload": "feed catching up after the workloads", "changes": backlog,
           "seconds": round(seconds, 1), "changes_per_second": round(backlog / max(seconds, 0.001)),
           "left": left}
    rows.append(row)
    save(rows)
    print("%-45s %d changes in %.1f s (%d a second), %d left" % (
        row["workload"], backlog, seconds, row["changes_per_second"], left), flush=True)


def measure_latency(args, logdir, save, rows):
    catch_up_feed(args, save, rows)
    for loaded in (False, True):
        latencies = feed_latency(args, logdir, loaded)
        row = {"workload": "feed latency, commit to consumer" + (", 8 clients of load" if loaded else ""),
               "transfers": len(latencies), "p50_ms": round(percentile(latencies, 0.5), 1),
               "p99_ms": round(percentile(latencies, 0.99), 1), "max_ms": round(max(latencies), 1)}
        rows.append(row)
        save(rows)
        print("%-45s %d transfers  p50 %.1f ms  p99 %.1f ms  max %.1f ms" % (
            row["workload"], row["transfers"], row["p50_ms"], row["p99_ms"], row["max_ms"]), flush=True)


def machine(args):
    def query(sql):
        return subprocess.run([os.path.join(PGBIN, "psql"), "-X", "-A", "-t", "-h", args.host, "-p",
                               str(args.port), "-U", "postgres", "-d", args.database, "-c", sql],
                              capture_output=True, text=True).stdout.strip()
    memory = open("/proc/meminfo").readline().split()[1]
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "memory_kib": int(memory), "postgres": query("SHOW server_version"),
            "synchronous_commit": query("SHOW synchronous_commit"),
            "shared_buffers": query("SHOW shared_buffers"),
            "seconds_per_run": args.seconds, "rounds": args.rounds}


def chart(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = ["%s\n%s acc, %d cl" % (r["workload"], "{:,}".format(r["accounts"]), r["clients"]) for r in rows]
    ratios = [r["ratio"] or 0 for r in rows]
    figure, axes = plt.subplots(figsize=(12, 5.5))
    bars = axes.bar(range(len(rows)), ratios, color="#4a7ab5")
    axes.axhline(1.0, color="grey", linewidth=0.8)
    axes.set_xticks(range(len(rows)))
    axes.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    axes.set_ylabel("throughput ratio: cte_ctel / plain SQL")
    axes.set_title("cte_ctel against hand-written plain SQL, side by side (higher is better)")
    for bar, ratio in zip(bars, ratios):
        axes.text(bar.get_x() + bar.get_width() / 2, ratio + 0.01, "%.2f" % ratio, ha="center", fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", default="cte_bench")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", required=True)
    parser.add_argument("--only", help="run just this workload")
    parser.add_argument("--results", help="add the rows to this results file instead of a new one")
    parser.add_argument("--pgledger", action="store_true",
                        help="pgledger is loaded: add the workloads against it")
    parser.add_argument("--scale", action="store_true",
                        help="the scale runs (databases cte_scale_small and cte_scale_large)")
    args = parser.parse_args()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = args.results or os.path.join(args.out, "results", stamp + ("-scale" if args.scale else "") + ".json")
    about = machine(args)
    earlier = json.load(open(path))["rows"] if args.results else []

    def save(rows):  # after every row, so an interrupted run keeps what it measured
        with open(path, "w") as handle:
            json.dump({"taken_at": stamp, "machine": about, "rows": rows}, handle, indent=1)

    with tempfile.TemporaryDirectory() as logdir:
        os.chmod(logdir, 0o777)
        rows = measure(args, logdir, save, earlier)
        if not args.scale and (not args.only or args.only.startswith("feed latency")):
            measure_latency(args, logdir, save, rows)
    print("results: " + path)
    if not args.scale and not args.only:
        chart([r for r in rows if "ratio" in r], os.path.join(args.out, "..", "docs", "performance.png"))
        print("chart: docs/performance.png")


if __name__ == "__main__":
    main()
