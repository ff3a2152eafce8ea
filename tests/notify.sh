#!/usr/bin/env bash
# NOTIFY cte_events: a listener sees one notification per status change of an event and its
# steps, sent when the transaction commits, with a JSON payload (event_id, transaction_id,
# old_status, new_status): first a 1-step event left waiting, then a deposit (the fast path).
# psql prints the sender's PID and ids differ on every run, so both are masked before the
# output is compared with tests/expected/notify.out.
# Usage: tests/notify.sh HOST PORT  (a server with cte_ctel installed in database cte_regress)
set -euo pipefail
host=$1 port=$2
here=$(cd "$(dirname "$0")" && pwd)
uuid='[0-9a-f]\{8\}-[0-9a-f]\{4\}-[0-9a-f]\{4\}-[0-9a-f]\{4\}-[0-9a-f]\{12\}'
actual=$(/usr/lib/postgresql/15/bin/psql -X -q -h "$host" -p "$port" -U postgres -d cte_regress \
    -v ON_ERROR_STOP=1 2>&1 <<'SQL' | sed -e "s/$uuid/<uuid>/g" -e 's/server process with PID [0-9]*/server process with PID N/'
SET search_path = cte_ctel;
LISTEN cte_events;
BEGIN;
SELECT cte_create_account('notify-a', ARRAY['USD']) \g /dev/null
SELECT cte_create_event('notified') AS e \gset
SELECT cte_add_transaction(:'e', 'wait', 'external', '{}') \g /dev/null
SELECT cte_start_event(:'e') \g /dev/null
COMMIT;
SELECT cte_deposit('notify-a', 1, 'USD') \g /dev/null
SELECT 1 \g /dev/null
SQL
)
expected=$(cat "$here/expected/notify.out")
if [ "$actual" != "$expected" ]; then
        echo "not ok - notifications differ from tests/expected/notify.out"
    diff <(echo "$expected") <(echo "$actual") || true
    exit 1
fi
echo "ok - a listener on cte_events got $(echo "$actual" | grep -c 'Asynchronous notification') notifications, one per status change, as expected"
