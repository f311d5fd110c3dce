# shellcheck shell=bash
# A throwaway PostgreSQL 15 cluster on 127.0.0.1 for the tests. Sourced, not run;
# safe under `set -euo pipefail`.
#
#   . scripts/lib/pg.sh
#   fhirsub_pg_start || exit 1      # exports FHIRSUB_TEST_PGSQL (a libpq conninfo)
#   trap fhirsub_pg_stop EXIT       # stops the server and removes its directory
#   make check                      # test_store also runs its pgsql tcase
#
# The server refuses to run as root: as root the cluster directory belongs to the
# `postgres` user and initdb/pg_ctl run through `runuser -u postgres --`; as any
# other user they run directly. Trust authentication, listening on 127.0.0.1 and a
# socket in the cluster directory only, on a free port. Variables:
#   FHIRSUB_PG_BIN   server binaries (default /usr/lib/postgresql/15/bin)
#   FHIRSUB_PG_DIR   set by fhirsub_pg_start: the cluster directory (data/, log)
#   FHIRSUB_PG_PORT  set by fhirsub_pg_start: the port it listens on

FHIRSUB_PG_BIN="${FHIRSUB_PG_BIN:-/usr/lib/postgresql/15/bin}"

_fhirsub_pg_say() { printf '==> pg: %s\n' "$*" >&2; }

# Run a server binary as the cluster's owner.
_fhirsub_pg_run() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# True when nothing accepts connections on 127.0.0.1:$1.
_fhirsub_pg_port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A port nobody listens on (pg_ctl start is retried with another if one races).
_fhirsub_pg_pick_port() {
    local port tries=0
    while [ "$tries" -lt 100 ]; do
        port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 30000 ))
        if _fhirsub_pg_port_free "$port"; then
            echo "$port"
            return 0
        fi
        tries=$((tries + 1))
    done
    return 1
}

# Create and start the cluster; export FHIRSUB_TEST_PGSQL. Returns non-zero (after
# cleaning up and printing the server log) when it cannot.
fhirsub_pg_start() {
    local dir port attempt
    if [ -n "${FHIRSUB_PG_DIR:-}" ] && [ -d "${FHIRSUB_PG_DIR}" ]; then
        _fhirsub_pg_say "already running in $FHIRSUB_PG_DIR"
        return 0
    fi
    if [ ! -x "$FHIRSUB_PG_BIN/initdb" ] || [ ! -x "$FHIRSUB_PG_BIN/pg_ctl" ]; then
        _fhirsub_pg_say "no PostgreSQL server in $FHIRSUB_PG_BIN (apt-get install postgresql)"
        return 1
    fi
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        _fhirsub_pg_say "running as root but there is no postgres user to run the server"
        return 1
    fi
    dir="$(mktemp -d "${TMPDIR:-/tmp}/fhirsub-pg.XXXXXX")" || return 1
    # the socket path (DIR/.s.PGSQL.PORT) must stay under 107 bytes
    if [ "${#dir}" -gt 80 ]; then
        rm -rf "$dir"
        dir="$(mktemp -d /tmp/fhirsub-pg.XXXXXX)" || return 1
    fi
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir" || { rm -rf "$dir"; return 1; }
    fi
    chmod 700 "$dir"
    if ! _fhirsub_pg_run "$FHIRSUB_PG_BIN/initdb" -D "$dir/data" -A trust -U fhirsub \
            -E UTF8 --locale=C >"$dir/initdb.log" 2>&1; then
        _fhirsub_pg_say "initdb failed:"
        cat "$dir/initdb.log" >&2
        rm -rf "$dir"
        return 1
    fi
    for attempt in 1 2 3 4 5; do
        port="$(_fhirsub_pg_pick_port)" || break
        if _fhirsub_pg_run "$FHIRSUB_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
                -o "-k $dir -c listen_addresses=127.0.0.1 -p $port" start >/dev/null 2>&1; then
            export FHIRSUB_PG_DIR="$dir"
            export FHIRSUB_PG_PORT="$port"
            export FHIRSUB_TEST_PGSQL="host=127.0.0.1 port=$port dbname=postgres user=fhirsub"
            _fhirsub_pg_say "PostgreSQL on 127.0.0.1:$port ($dir)"
            return 0
        fi
        _fhirsub_pg_say "start on port $port failed (attempt $attempt)"
    done
    _fhirsub_pg_say "cannot start PostgreSQL; server log:"
    cat "$dir/log" >&2 2>/dev/null || true
    _fhirsub_pg_run "$FHIRSUB_PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop \
        >/dev/null 2>&1 || true
    rm -rf "$dir"
    return 1
}

# Stop the cluster and remove its directory; does nothing when none runs. Returns 0,
# so it is safe under `set -e` and as an EXIT trap (which keeps the script's status).
fhirsub_pg_stop() {
    local dir="${FHIRSUB_PG_DIR:-}"
    if [ -n "$dir" ] && [ -d "$dir" ]; then
        if [ -f "$dir/data/postmaster.pid" ]; then
            _fhirsub_pg_run "$FHIRSUB_PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop \
                >/dev/null 2>&1 \
            || _fhirsub_pg_run "$FHIRSUB_PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop \
                >/dev/null 2>&1 \
            || _fhirsub_pg_say "could not stop the server in $dir"
        fi
        rm -rf "$dir"
    fi
    unset FHIRSUB_PG_DIR FHIRSUB_PG_PORT FHIRSUB_TEST_PGSQL
    return 0
}
