# Shared by bin/demo and bin/test: install what is missing, build and install the extension,
# start and stop a local PostgreSQL 15 cluster. Sourced, not run.
set -euo pipefail

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=/usr/bin/pg_config
PGRX_VERSION=0.18.1
PGXS_TEST=/usr/lib/postgresql/$PG_MAJOR/lib/pgxs/src/test
# Everything the server reads or writes lives here, outside the clone: the clone may sit in a
# folder the server's user cannot enter.
CTE_CTEL_HOME=${CTE_CTEL_HOME:-/tmp/cte_ctel-$(id -un)}
# Extra environment for the servers we start (words "NAME=value"): bin/test moves their clock
# with libfaketime this way.
CTE_CTEL_SERVER_ENV=${CTE_CTEL_SERVER_ENV:-}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '\n==> %s\n' "$*"; }

is_root() { [ "$(id -u)" = 0 ]; }

as_root() { if is_root; then "$@"; else sudo "$@"; fi; }

# The server refuses to run as root: as root we run it as `postgres`, otherwise as ourselves.
server_user() { if is_root; then echo postgres; else id -un; fi; }

as_server_user() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

ensure_packages() {
    # pgbackrest: the backup tool the point-in-time recovery test uses beside pg_basebackup;
    # auto-failover: bin/failover-auto; python3-psycopg: the Python example client; faketime:
    # bin/test runs the suites again on a server whose clock is moved a year ahead.
    local wanted=(postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libclang-dev clang sudo
                  libipc-run-perl pkg-config build-essential pgbackrest python3-psycopg
                  postgresql-$PG_MAJOR-auto-failover faketime)
    local missing=()
    for package in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing Debian packages: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
    # Debian's postgresql package starts a cluster on 5432; we use our own, so leave it be.
}

ensure_cargo_pgrx() {
    if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
        say "installing cargo-pgrx $PGRX_VERSION (takes about 5 minutes)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    fi
    if ! grep -qs "^pg$PG_MAJOR = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
        say "cargo pgrx init --pg$PG_MAJOR $PG_CONFIG"
        cargo pgrx init --pg$PG_MAJOR "$PG_CONFIG"
    fi
}

ensure_tools() {
    ensure_packages
    ensure_cargo_pgrx
}

# Installing copies the library over the one in place, which a running server that loaded it
# would go on using half-replaced: every server of ours is stopped first.
stop_all_clusters() {
    local pid_file
    for pid_file in "$CTE_CTEL_HOME"/*/postmaster.pid; do
        [ -s "$pid_file" ] || continue
        say "stopping the server in $(dirname "$pid_file") before installing"
        stop_cluster "$(dirname "$pid_file")"
    done
}

install_extension() {
    stop_all_clusters
    say "building and installing the extension"
    cd "$REPO_ROOT"
    if is_root; then
        cargo pgrx install --pg-config "$PG_CONFIG"
    else
        cargo pgrx install --pg-config "$PG_CONFIG" --sudo
    fi
}

# start_cluster DIR PORT [SETTING...]: a cluster in DIR on PORT (socket in DIR, loopback TCP),
# preloading cte_ctel, trusting local connections, with each SETTING ("name = value") written
# to DIR/cte_ctel.conf. Restarted if it runs, so a new build is loaded.
start_cluster() {
    local dir=$1 port=$2
    shift 2
    mkdir -p "$CTE_CTEL_HOME"
    chmod 755 "$CTE_CTEL_HOME"
    if [ ! -s "$dir/PG_VERSION" ]; then
        mkdir -p "$dir"
        is_root && chown postgres: "$dir"
        chmod 700 "$dir"
        as_server_user "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 \
            --locale=C.UTF-8 >/dev/null
        cat <<CONF | as_server_user tee -a "$dir/postgresql.conf" >/dev/null
# cte_ctel
port = $port
listen_addresses = 'localhost'
unix_socket_directories = '$dir'
shared_preload_libraries = 'cte_ctel'
max_prepared_transactions = 10
log_line_prefix = '%m [%p] %q%a '
CONF
    fi
    if ! grep -q "include_if_exists = 'cte_ctel.conf'" "$dir/postgresql.conf"; then
        echo "include_if_exists = 'cte_ctel.conf'" | as_server_user tee -a "$dir/postgresql.conf" >/dev/null
    fi
    printf '%s\n' "$@" | as_server_user tee "$dir/cte_ctel.conf" >/dev/null
    stop_cluster "$dir"
    # RUST_BACKTRACE=1: the extension must keep backtraces out of every error's DETAIL (it turns
    # library backtraces off); with it set, a leaked one would show in the tests' output.
    local port_in_use
    if ! as_server_user env RUST_BACKTRACE=1 $CTE_CTEL_SERVER_ENV "$PG_BIN/pg_ctl" -D "$dir" \
            -l "$dir/server.log" -w -t 60 start >/dev/null; then
        # pg_ctl only says "Examine the log output": show it, and who holds the port.
        port_in_use=$(grep -E "^port *=" "$dir/postgresql.conf" | tail -n 1 | tr -dc '0-9')
        echo "could not start the server in $dir on port ${port_in_use:-$port}; last lines of $dir/server.log:" >&2
        tail -n 20 "$dir/server.log" >&2 || true
        if command -v ss >/dev/null 2>&1; then
            ss -ltnp "sport = :${port_in_use:-$port}" >&2 || true
        fi
        return 1
    fi
}

stop_cluster() {
    local dir=$1
    if [ -s "$dir/postmaster.pid" ]; then
        as_server_user "$PG_BIN/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    fi
}
