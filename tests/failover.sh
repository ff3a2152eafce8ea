#!/usr/bin/env bash
# Runs tests/failover.pl (PostgreSQL's TAP framework, PostgreSQL::Test::Cluster) as the server's
# user from a folder of its own: the clone may sit where that user cannot enter. Its clusters
# use ports the framework picks. Prints the TAP output ("ok N - ...").
source "$(dirname "$0")/../bin/common.sh"
work=$CTE_CTEL_HOME/failover
rm -rf "$work" && mkdir -p "$work"
cp "$REPO_ROOT/tests/failover.pl" "$work/"
is_root && chown -R postgres: "$work"
cd "$work" || exit 1
as_server_user env PATH="$PG_BIN:$PATH" PERL5LIB="$PGXS_TEST/perl" PG_REGRESS="$PGXS_TEST/regress/pg_regress" \
    prove -v failover.pl 2>&1 | sed -e 's/^ok [0-9]* -/ok -/' -e 's/^not ok [0-9]* -/not ok -/'
status=${PIPESTATUS[0]}
grep -h "failover:" "$work"/tmp_check/log/regress_log_*  2>/dev/null | tail -1
exit "$status"
