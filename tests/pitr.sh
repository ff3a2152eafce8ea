#!/usr/bin/env bash
# Physical backup and point-in-time recovery (SPEC §1 v2). A cluster archiving its WAL holds a
# filled ledger; a base backup is taken (with pg_basebackup, and with pgBackRest, the tool
# operators use); transfers commit before a named restore point and a marked time, more after.
# Each backup is recovered to each target: every transfer committed before it is there, none
# after, the ledger verifies, and the recovered server's worker takes over its duties.
# Prints "ok - ..." / "not ok - ...".
# Usage: tests/pitr.sh PORT   (it makes its own clusters on PORT and PORT + 1)
source "$(dirname "$0")/../bin/common.sh"
set +e
port=$1
work=$CTE_CTEL_HOME/pitr
primary=$work/primary recovered=$work/recovered archive=$work/archive
failures=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failures=$((failures + 1)); }
qp() { "$PG_BIN/psql" -X -q -t -A -h "$primary" -p "$port" -U postgres -d cte_pitr -v ON_ERROR_STOP=1 "$@"; }
qr() { "$PG_BIN/psql" -X -q -t -A -h "$recovered" -p $((port + 1)) -U postgres -d cte_pitr -v ON_ERROR_STOP=1 "$@"; }

stop_cluster "$recovered"; stop_cluster "$primary"
rm -rf "$work" && mkdir -p "$archive" "$work/pgbackrest" && chmod 755 "$work"
is_root && chown -R postgres: "$work"
start_cluster "$primary" "$port" "cte_ctel.database = 'cte_pitr'" "cte_ctel.worker_interval = '200ms'" \
    "wal_level = replica" "archive_mode = on" \
    "archive_command = 'cp %p $archive/%f && pgbackrest --stanza=pitr --repo1-path=$work/pgbackrest --pg1-path=$primary --log-path=$work --lock-path=$work archive-push %p'"
"$PG_BIN/psql" -X -q -h "$primary" -p "$port" -U postgres -d postgres -c "CREATE DATABASE cte_pitr"
(cd "$REPO_ROOT" && qp -f tests/lifecycle/fill.sql) >"$work/fill.log" 2>&1 || not_ok "the ledger is filled"

backrest() { as_server_user pgbackrest --stanza=pitr --repo1-path="$work/pgbackrest" --pg1-path="$primary" \
    --pg1-port="$port" --pg1-socket-path="$primary" --log-path="$work" --lock-path="$work" "$@"; }
backrest stanza-create >"$work/stanza.log" 2>&1 || not_ok "pgbackrest stanza-create (see $work/stanza.log)"
if backrest backup --type=full --start-fast >"$work/backrest.log" 2>&1; then
    ok "pgBackRest takes a full backup of the running ledger"
else
    not_ok "pgBackRest takes a full backup (see $work/backrest.log)"; tail -5 "$work/backrest.log"
fi
if as_server_user "$PG_BIN/pg_basebackup" -h "$primary" -p "$port" -U postgres -D "$work/base" -X none -c fast \
    >"$work/basebackup.log" 2>&1; then
    ok "pg_basebackup takes a base backup"
else
    not_ok "pg_basebackup takes a base backup (see $work/basebackup.log)"
fi

transfers() { # transfers PREFIX COUNT
    for i in $(seq "$2"); do qp -c "SELECT cte_ctel.cte_transfer('l-alice', 'l-bob', 0.01, 'USD', '$1-$i')" >/dev/null; done
}
transfers before-time 5
sleep 1.1
mark=$(qp -c "SELECT clock_timestamp()")
sleep 1.1
transfers before-name 5
qp -c "SELECT pg_create_restore_point('cte_pitr_point')" >/dev/null
transfers after 5
qp -c "SELECT pg_switch_wal()" >/dev/null
for _ in $(seq 50); do
    [ "$(qp -c "SELECT last_archived_wal = pg_walfile_name(pg_current_wal_lsn()) OR failed_count > 0 FROM pg_stat_archiver")" = t ] && break
    qp -c "SELECT pg_switch_wal()" >/dev/null; sleep 0.2
done
stop_cluster "$primary"

# recover FROM TARGET: a recovered copy of the primary, started at the target and promoted.
recover() {
    stop_cluster "$recovered"; rm -rf "$recovered"
    case $1 in
        basebackup) cp -a "$work/base" "$recovered" ;;
        pgbackrest) mkdir -p "$recovered"; chmod 700 "$recovered"; is_root && chown postgres: "$recovered"
            as_server_user pgbackrest --stanza=pitr --repo1-path="$work/pgbackrest" --pg1-path="$recovered" \
                --log-path="$work" --lock-path="$work" restore --type=immediate --target-action=pause >"$work/restore.log" 2>&1 ;;
    esac
    rm -f "$recovered/postmaster.pid" "$recovered/recovery.signal" "$recovered/postgresql.auto.conf"
    touch "$recovered/recovery.signal"; is_root && chown postgres: "$recovered/recovery.signal"
    start_cluster "$recovered" $((port + 1)) "port = $((port + 1))" "unix_socket_directories = '$recovered'" \
        "cte_ctel.database = 'cte_pitr'" "cte_ctel.worker_interval = '200ms'" \
        "archive_mode = off" "restore_command = 'cp $archive/%f %p'" "$2" "recovery_target_action = 'promote'" \
        "recovery_target_inclusive = true"
    for _ in $(seq 100); do
        [ "$(qr -c "SELECT NOT pg_is_in_recovery()" 2>/dev/null)" = t ] && return 0
        sleep 0.2
    done
    return 1
}
holds() { qr -c "SELECT count(*) FROM cte_ctel.cte_entries WHERE reference LIKE '$1-%' AND amount > 0"; }

for from in basebackup pgbackrest; do
    for target in "recovery_target_name = 'cte_pitr_point'" "recovery_target_time = '$mark'"; do
        name=${target%% =*}
        if ! recover "$from" "$target"; then not_ok "$from, $name: the copy recovers and is promoted"; continue; fi
        before_time=$(holds before-time) before_name=$(holds before-name) after=$(holds after)
        case $name in
            recovery_target_name) want_name=5 ;;
            *) want_name=0 ;;
        esac
        if [ "$before_time" = 5 ] && [ "$before_name" = "$want_name" ] && [ "$after" = 0 ]; then
            ok "$from, $name: exactly the transfers committed before the target are there"
        else
            not_ok "$from, $name: before the time $before_time/5, before the point $before_name/$want_name, after $after/0"
        fi
        [ "$(qr -c "SELECT count(*) FROM cte_ctel.cte_verify_ledger()")" = 0 ] \
            && ok "$from, $name: the recovered ledger verifies" || not_ok "$from, $name: the recovered ledger verifies"
        lien=$(qr -c "SELECT cte_ctel.ctel_create_lien(NULL, 'l-alice', 1, 'USD', now() + interval '300 milliseconds')")
        expired=f
        for _ in $(seq 75); do
            expired=$(qr -c "SELECT status = 'expired' FROM cte_ctel.cte_liens WHERE id = '$lien'")
            [ "$expired" = t ] && break; sleep 0.2
        done
        [ "$expired" = t ] && ok "$from, $name: the recovered server's worker expires a lien" \
            || not_ok "$from, $name: the recovered server's worker expires a lien"
    done
done
stop_cluster "$recovered"
rm -rf "$work"
[ "$failures" -eq 0 ]
