#!/usr/bin/env python3
"""A change-feed consumer that keeps disconnecting, under concurrent load (issue 13).

Four producers post transfers, each with a reference of its own; one in five is rolled back
instead of committed, and one in five commits from a transaction that stayed open a while (so
later transfers commit first). The real worker sequences the feed. A consumer follows
cte_changes(after, limit) in small pages, woken by LISTEN cte_events, keeping its cursor only in
a variable, and drops its connection at random (every few pages) and reconnects, starting again
from the cursor it had. At the end:
  - every committed transfer's changes were seen, and nothing of a rolled-back one;
  - no position was seen twice, and positions only increased, across the reconnects;
  - what the consumer saw equals the feed read again in one pass from the start.
Prints "ok - ..." / "not ok - ..." per check.

Usage: feed.py CONNINFO   (the database the worker serves)
"""

import random
import select
import sys
import threading
import time

import psycopg

PRODUCERS = 4
TRANSFERS_PER_PRODUCER = 60
failures = 0


def ok(condition, what):
    global failures
    print(("ok - " if condition else "not ok - ") + what, flush=True)
    if not condition:
        failures += 1


def setup(conninfo):
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for producer in range(PRODUCERS):
            for side in ("from", "to"):
                account = "feed-%s-%d" % (side, producer)
                if not conn.execute("SELECT 1 FROM cte_ctel.cte_accounts WHERE id = %s", (account,)).fetchone():
                    conn.execute("SELECT cte_ctel.cte_create_account(%s, ARRAY['USD'])", (account,))
            conn.execute("SELECT cte_ctel.cte_deposit(%s, 1000, 'USD')", ("feed-from-%d" % producer,))
        # Start after everything so far has its position.
        for _ in range(100):
            if conn.execute("SELECT count(*) FROM cte_ctel.cte_change_outbox").fetchone()[0] == 0:
                break
            time.sleep(0.1)
        return conn.execute("SELECT coalesce(max(position), 0) FROM cte_ctel.cte_change_log").fetchone()[0]


def produce(conninfo, producer, committed, rolled_back, seed):
    chance = random.Random(seed)
    with psycopg.connect(conninfo) as conn:
        for number in range(TRANSFERS_PER_PRODUCER):
            reference = "feed-%d-%d-%d" % (seed, producer, number)
            conn.execute("SELECT cte_ctel.cte_transfer(%s, %s, 0.01, 'USD', %s)",
                         ("feed-from-%d" % producer, "feed-to-%d" % producer, reference))
            roll = chance.random()
            if roll < 0.2:
                conn.rollback()
                rolled_back.add(reference)
                continue
            if roll < 0.4:
                time.sleep(chance.uniform(0.05, 0.4))  # others commit meanwhile
            conn.commit()
            committed.add(reference)
            time.sleep(chance.uniform(0, 0.02))


def consume(conninfo, cursor, done, seen, positions, reconnects, seed):
    chance = random.Random(seed + 1)
    conn = None
    idle_since = None
    while True:
        if conn is None:
            conn = psycopg.connect(conninfo, autocommit=True)
            conn.execute("LISTEN cte_events")
        select.select([conn.pgconn.socket], [], [], 0.2)
        rows = conn.execute("SELECT position, reference FROM cte_ctel.cte_changes(%s, 7)",
                            (cursor,)).fetchall()
        for position, reference in rows:
            positions.append(position)
            cursor = position
            if reference:
                seen.setdefault(reference, []).append(position)
        if rows:
            idle_since = None
        elif done.is_set():
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 3:  # the worker had time to sequence the rest
                break
        if chance.random() < 0.3:  # drop the connection; start again from the cursor
            conn.close()
            conn = None
            reconnects[0] += 1
    if conn is not None:
        conn.close()


def main(conninfo):
    seed = int(time.time())
    start = setup(conninfo)
    committed, rolled_back, seen, positions, reconnects = set(), set(), {}, [], [0]
    done = threading.Event()
    consumer = threading.Thread(target=consume,
                                args=(conninfo, start, done, seen, positions, reconnects, seed))
    consumer.start()
    producers = [threading.Thread(target=produce, args=(conninfo, p, committed, rolled_back, seed))
                 for p in range(PRODUCERS)]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    done.set()
    consumer.join()
    ours = {r for r in seen if r.startswith("feed-%d-" % seed)}
    missing = committed - ours
    ok(not missing, "the consumer saw all %d committed transfers across %d reconnects (missing %d)"
       % (len(committed), reconnects[0], len(missing)))
    ok(not (ours & rolled_back), "and none of the %d rolled back" % len(rolled_back))
    ok(len(positions) == len(set(positions)) and positions == sorted(positions),
       "no position seen twice, positions only increased (%d changes)" % len(positions))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        again = [row[0] for row in conn.execute(
            "SELECT position FROM cte_ctel.cte_changes(%s, 10000) WHERE position <= %s",
            (start, positions[-1] if positions else start)).fetchall()]
    ok(again == positions, "what it saw equals the feed read again in one pass (%d changes)" % len(again))
    return failures


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(1 if main(sys.argv[1]) else 0)
