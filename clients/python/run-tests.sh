#!/usr/bin/env bash
# Runs the Python client's tests (pytest) against a live server with cte_ctel preloaded.
# Makes what they need as the server's superuser `postgres`: DATABASE (dropped and made again),
# the extension, and the login role py_app, which is not a superuser and holds only
# cte_operator; the tests call the API as py_app and do the administrator's part (registering
# hosted types, maintenance passes) as postgres. Installs nothing: needs /usr/bin/python3 with
# psycopg 3 (python3-psycopg) and pytest (python3-pytest).
# Usage: clients/python/run-tests.sh HOST PORT DATABASE [PYTEST ARGUMENTS]
set -u
if [ $# -lt 3 ]; then
    echo "usage: $0 HOST PORT DATABASE" >&2
    exit 2
fi
host=$1 port=$2 database=$3
shift 3  # anything after DATABASE goes to pytest (-k NAME, -x, ...)
here=$(cd "$(dirname "$0")" && pwd)
"$here/../make-test-database.sh" "$host" "$port" "$database" py_app || exit 1
export CTE_CTEL_TEST_DSN="host=$host port=$port dbname=$database user=py_app"
export CTE_CTEL_TEST_ADMIN_DSN="host=$host port=$port dbname=$database user=postgres"
cd "$here" && exec /usr/bin/python3 -m pytest -q -p no:cacheprovider tests "$@"
