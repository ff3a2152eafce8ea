#!/usr/bin/env bash
# The upgrade path from every released version (0.1.0 at 0b706a9, 0.2.0 at 54762cd) to the
# current one, with data in it. For each: builds it from its commit (cached in
# $CTE_CTEL_HOME/build-VERSION), installs it, fills a database through its API (0.2.0 also with
# keyed captures, refunds and events, replayed after the update), then installs the current
# build over it (one cte_ctel.so: the new
# library first serves the old SQL), runs ALTER EXTENSION cte_ctel UPDATE and checks: the stored
# rows are unchanged, the ledger verifies, new work runs, the worker idled until the versions
# matched and works after, and the upgraded schema equals a fresh install's, compared through
# the catalogs (tests/upgrade/describe.sql). Prints "ok - ..." / "not ok - ..." per check.
#
# It swaps the installed library: no other server that loaded cte_ctel may run meanwhile.
# Usage: tests/upgrade.sh   (from bin/test, after the other suites stopped their server)
source "$(dirname "$0")/../bin/common.sh"
set +e

# Every released version, the commit it was released at, and the majors it builds on: 0.2.0
# reads PGPROC's `pgprocno`, which PostgreSQL 17 removed, so no 17 or 18 database can hold it.
RELEASES=("0.1.0 0b706a9" "0.2.0 54762cd")
declare -A RELEASE_MAJORS=([0.1.0]="15 16 17 18" [0.2.0]="15 16")
CURRENT_VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_ROOT/Cargo.toml" | head -n 1)
DIR=$(cluster_dir upgrade-cluster)
PORT=${CTE_CTEL_UPGRADE_PORT:-54332}
OUT=$(cluster_dir test-logs/upgrade)
EXT_DIR=$("$PG_CONFIG" --sharedir)/extension
LIB_DIR=$("$PG_CONFIG" --pkglibdir)
failures=0
mkdir -p "$OUT"

ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failures=$((failures + 1)); }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
q() { local db=$1; shift; "$PG_BIN/psql" -X -q -t -A -h "$DIR" -p "$PORT" -U postgres -d "$db" -v ON_ERROR_STOP=1 "$@"; }

# package DIR SRC TARGET: a debug package of the crate in SRC, built in TARGET, into DIR.
package() {
    (cd "$2" && CARGO_TARGET_DIR=$3 cargo pgrx package --debug --pg-config "$PG_CONFIG" --out-dir "$1") \
        >"$OUT/package-$(basename "$1").log" 2>&1
}

# install_package DIR: copies a package's library and SQL files over the installed ones.
install_package() {
    as_root cp "$1$LIB_DIR/cte_ctel.so" "$LIB_DIR/cte_ctel.so"
    as_root cp "$1$EXT_DIR"/cte_ctel* "$EXT_DIR/"
}

# fill_keys: the keyed writes of the released version, when it has a fill of its own.
fill_keys() {
    [ -f "$REPO_ROOT/tests/upgrade/fill-$OLD_VERSION.sql" ] || return 0
    q cte_upgrade -f "$REPO_ROOT/tests/upgrade/fill-$OLD_VERSION.sql"
}

# build_release: the package of OLD_VERSION built from OLD_COMMIT, in old_pkg.
build_release() {
    old_pkg=$(cluster_dir build-$OLD_VERSION)/package
    if [ ! -f "$old_pkg/.built-from-$OLD_COMMIT" ]; then
        say "building cte_ctel $OLD_VERSION from commit $OLD_COMMIT (cached for later runs)"
        if ! git -C "$REPO_ROOT" cat-file -e "$OLD_COMMIT^{commit}" 2>/dev/null; then
            git -C "$REPO_ROOT" fetch --quiet --unshallow 2>/dev/null || git -C "$REPO_ROOT" fetch --quiet origin
        fi
        src=$(cluster_dir build-$OLD_VERSION)/src
        rm -rf "$src" "$old_pkg" && mkdir -p "$src"
        git -C "$REPO_ROOT" archive "$OLD_COMMIT" | tar -x -C "$src"
        if package "$old_pkg" "$src" "$(cluster_dir build-$OLD_VERSION)/target"; then
            touch "$old_pkg/.built-from-$OLD_COMMIT"
        else
            not_ok "cte_ctel $OLD_VERSION builds from $OLD_COMMIT (see $OUT/package-package.log)"
            return 1
        fi
    fi
}

# upgrade_from VERSION COMMIT: every check of the path from that release to the current build.
upgrade_from() {
    OLD_VERSION=$1 OLD_COMMIT=$2
    OUT=$(cluster_dir test-logs/upgrade)/from-$OLD_VERSION
    mkdir -p "$OUT"
    old_pkg=$(cluster_dir build-$OLD_VERSION)/package
    build_release || return 1
    check "the current package ships an upgrade script from $OLD_VERSION" \
        "ls '$new_pkg$EXT_DIR'/cte_ctel--$OLD_VERSION--*.sql >/dev/null 2>&1"
    # The old SQL names C symbols; the new library must still have each, or the old functions
    # would fail to load between the library's install and ALTER EXTENSION UPDATE.
    # The symbol list is read once into a file: `nm | grep -q` under pipefail fails whenever grep
    # exits at its first match before nm has written everything (nm dies of SIGPIPE).
    nm -D --defined-only "$new_pkg$LIB_DIR/cte_ctel.so" >"$OUT/symbols.txt"
    missing=$(grep -o "'[a-z_]*_wrapper'" "$old_pkg$EXT_DIR/cte_ctel--$OLD_VERSION.sql" | tr -d "'" | sort -u |
        while read -r symbol; do
            grep -qw "$symbol" "$OUT/symbols.txt" || echo "$symbol"
        done)
    check "the new library keeps every symbol $OLD_VERSION's SQL names${missing:+ (missing: $missing)}" "[ -z '$missing' ]"

    say "phase 1: cte_ctel $OLD_VERSION, filled through its API"
    stop_cluster "$DIR"
    rm -rf "$DIR"
    install_package "$old_pkg"
    # The worker serves cte_upgrade but is paused: the rows must not move while they are compared.
    start_cluster "$DIR" "$PORT" "cte_ctel.database = 'cte_upgrade'" "cte_ctel.worker_interval = '200ms'" \
        "cte_ctel.worker_enabled = off"
    q postgres -c "CREATE DATABASE cte_upgrade" -c "CREATE DATABASE cte_fresh"
    if q cte_upgrade -v old_version="$OLD_VERSION" -f "$REPO_ROOT/tests/upgrade/fill.sql" \
            >"$OUT/fill.log" 2>&1 && fill_keys; then
        ok "a $OLD_VERSION database is filled through its API"
    else
        not_ok "a $OLD_VERSION database is filled through its API (see $OUT/fill.log)"
    fi
    q cte_upgrade -f "$REPO_ROOT/tests/upgrade/fingerprint.sql" >"$OUT/before.txt"
    old_changes=$(q cte_upgrade -c "SELECT count(*) FROM cte_ctel.cte_event_history")

    say "phase 2: the $CURRENT_VERSION library serving the $OLD_VERSION SQL"
    stop_cluster "$DIR"
    install_package "$new_pkg"
    start_cluster "$DIR" "$PORT" "cte_ctel.database = 'cte_upgrade'" "cte_ctel.worker_interval = '200ms'"
    check "the old SQL runs on the new library: balances read" \
        "[ \"\$(q cte_upgrade -c \"SELECT cte_ctel.cte_balance('u-fees', 'USD')\")\" = 10.00 ]"
    bob_before=$(q cte_upgrade -c "SELECT cte_ctel.cte_balance('u-bob', 'USD')")
    if [ "$OLD_VERSION" = 0.2.0 ]; then
        # 0.2.0's cte_changes (sixteen columns) reads tables without the columns 0.3.0 added.
        check "the old SQL runs on the new library: the feed reads (0.2.0's cte_changes)" \
            "[ \"\$(q cte_upgrade -c 'SELECT count(*) >= 0 FROM cte_ctel.cte_changes(0, 100)')\" = t ]"
    fi
    if [ "$OLD_VERSION" = 0.1.0 ]; then
        # 0.1.0's tables lack columns the library writes: a write is refused until the update.
        refused=$(q cte_upgrade -c "SELECT cte_ctel.cte_transfer('u-alice', 'u-bob', 1, 'USD')" 2>&1)
        check "until the update, a write is refused with a clear message and a hint to update" \
            "echo \"\$refused\" | grep -q 'older version.s SQL' && echo \"\$refused\" | grep -q 'ALTER EXTENSION cte_ctel UPDATE'"
        # A function whose arguments changed in 0.2.0: its old symbol refuses the same way.
        held=$(q cte_upgrade -c "SELECT cte_ctel.ctel_create_lien(NULL, 'u-bob', 1, 'USD')" 2>&1)
        check "a function whose arguments changed refuses the same way (ctel_create_lien)" \
            "echo \"\$held\" | grep -q 'older version.s SQL' && echo \"\$held\" | grep -q 'ALTER EXTENSION cte_ctel UPDATE'"
        check "and nothing changed" \
            "[ \"\$(q cte_upgrade -c \"SELECT cte_ctel.cte_balance('u-bob', 'USD')\")\" = '$bob_before' ]"
    fi
    sleep 1
    if [ "$OLD_VERSION" = 0.1.0 ]; then
        check "the worker idles while the installed version is $OLD_VERSION" \
            "[ \"\$(q cte_upgrade -c 'SELECT count(*) FROM cte_ctel.cte_notify_queue')\" = 1 ]"
    else
        # Filled with the worker paused, every change is still in the outbox: a worker that
        # served the old SQL would have sequenced them by now.
        check "the worker idles while the installed version is $OLD_VERSION" \
            "[ \"\$(q cte_upgrade -c 'SELECT count(*) > 0 FROM cte_ctel.cte_change_outbox')\" = t ]"
    fi

    # Paused again, so nothing moves between the two fingerprints.
    q cte_upgrade -c "ALTER SYSTEM SET cte_ctel.worker_enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5

    say "phase 3: ALTER EXTENSION cte_ctel UPDATE"
    if q cte_upgrade -c "ALTER EXTENSION cte_ctel UPDATE" >"$OUT/update.log" 2>&1; then
        ok "ALTER EXTENSION cte_ctel UPDATE runs from $OLD_VERSION to $CURRENT_VERSION"
    else
        not_ok "ALTER EXTENSION cte_ctel UPDATE runs from $OLD_VERSION to $CURRENT_VERSION (see $OUT/update.log)"
    fi
    q cte_upgrade -f "$REPO_ROOT/tests/upgrade/fingerprint.sql" >"$OUT/after.txt"
    if diff "$OUT/before.txt" "$OUT/after.txt" >"$OUT/rows.diff"; then
        ok "every stored row is unchanged by the upgrade ($(wc -l <"$OUT/before.txt") rows compared)"
    else
        not_ok "every stored row is unchanged by the upgrade (see $OUT/rows.diff)"
        head -40 "$OUT/rows.diff"
    fi
    q cte_fresh -c "CREATE EXTENSION cte_ctel" >/dev/null
    q cte_upgrade -f "$REPO_ROOT/tests/upgrade/describe.sql" >"$OUT/schema-upgraded.txt" 2>&1
    q cte_fresh -f "$REPO_ROOT/tests/upgrade/describe.sql" >"$OUT/schema-fresh.txt" 2>&1
    facts=$(wc -l <"$OUT/schema-fresh.txt")
    if [ "$facts" -gt 200 ] && diff "$OUT/schema-fresh.txt" "$OUT/schema-upgraded.txt" >"$OUT/schema.diff"; then
        ok "the upgraded schema equals a fresh install's ($facts catalog facts)"
    else
        not_ok "the upgraded schema equals a fresh install's (see $OUT/schema.diff)"
        head -60 "$OUT/schema.diff"
    fi
    q cte_upgrade -v version="$CURRENT_VERSION" -f "$REPO_ROOT/tests/upgrade/after.sql" 2>&1 | tee "$OUT/after.log"
    failures=$((failures + $(grep -c '^not ok' "$OUT/after.log")))
    if [ -f "$REPO_ROOT/tests/upgrade/after-$OLD_VERSION.sql" ]; then
        q cte_upgrade -f "$REPO_ROOT/tests/upgrade/after-$OLD_VERSION.sql" 2>&1 | tee "$OUT/after-keys.log"
        failures=$((failures + $(grep -c '^not ok' "$OUT/after-keys.log")))
        check "the replays of $OLD_VERSION's keyed writes ran (see $OUT/after-keys.log)" \
            "[ \$(grep -c '^ok' '$OUT/after-keys.log') -gt 0 ]"
    fi
    q cte_upgrade -c "ALTER SYSTEM RESET cte_ctel.worker_enabled" -c "SELECT pg_reload_conf()" >/dev/null
    wait_sql() { # wait_sql SECONDS SQL: until SQL returns t
        local tries
        for ((tries = 0; tries < $1 * 5; tries++)); do
            [ "$(q cte_upgrade -c "$2" 2>/dev/null)" = t ] && return 0
            sleep 0.2
        done
        return 1
    }
    check "after the upgrade the worker serves the database: the lien made to expire on $OLD_VERSION expires" \
        "wait_sql 40 \"SELECT status = 'expired' FROM cte_ctel.cte_liens WHERE amount = 3\""
    if [ "$OLD_VERSION" = 0.1.0 ]; then
        # 0.2.0 turned 0.1.0's history into the feed's first positions.
        check "the $OLD_VERSION history is the start of the feed, in its order" \
            "wait_sql 10 \"SELECT count(*) = (SELECT count(*) FROM cte_ctel.cte_change_log WHERE cardinality(kinds) = 1 AND position <= $old_changes)
                          AND bool_and(position BETWEEN 1 AND $old_changes) FROM cte_ctel.cte_changes(0, $old_changes)\""
    else
        # What 0.2.0 recorded but had not sequenced (its worker was paused) is in the feed now.
        check "every change recorded on $OLD_VERSION is in the feed, each once" \
            "wait_sql 10 \"SELECT count(*) >= $old_changes AND count(*) = (SELECT count(*) FROM cte_ctel.cte_event_history)
                            AND count(DISTINCT position) = count(*) FROM cte_ctel.cte_changes(0, 10000)\""
    fi
    check "and the worker sequences what happened since" \
        "wait_sql 10 'SELECT count(*) = 0 FROM cte_ctel.cte_change_outbox'"
    stop_cluster "$DIR"
}

say "packaging the current build ($CURRENT_VERSION)"
new_pkg=$(cluster_dir build-current)/package
rm -rf "$new_pkg"
if ! package "$new_pkg" "$REPO_ROOT" "${CARGO_TARGET_DIR:-$REPO_ROOT/target}"; then
    not_ok "the current build packages (see $OUT/package-package.log)"
    exit 1
fi
for release in "${RELEASES[@]}"; do
    if [[ " ${RELEASE_MAJORS[${release% *}]} " != *" $PG_MAJOR "* ]]; then
        echo "# ${release% *} is not built for PostgreSQL $PG_MAJOR (it does not build there): no upgrade from it to test"
        continue
    fi
    # shellcheck disable=SC2086 # "VERSION COMMIT"
    upgrade_from $release || not_ok "the upgrade from ${release% *} ran to its end"
done
exit $((failures > 0))
