# Sourced by .ci/run: a throwaway PostgreSQL cluster for the tests of PostgreSQL data sources.
# Installs Debian's postgresql if initdb is absent, creates a cluster in a temporary directory
# (owned by postgres: initdb refuses to run as root), starts it on a free port of 127.0.0.1,
# exports POOLED_TEST_PG (tests/pg.py), and stops and removes it when the script exits.
start_test_postgres() {
    local bindir
    if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    bindir=$(dirname "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
    PG_TMP=$(mktemp -d /tmp/pooled-ci-pg.XXXXXX)
    PG_AS=()
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PG_TMP"; PG_AS=(runuser -u postgres --); fi
    PG_PORT=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    PG_CTL="$bindir/pg_ctl"
    "${PG_AS[@]}" "$bindir/initdb" -D "$PG_TMP/data" -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
    trap 'stop_test_postgres' EXIT
    "${PG_AS[@]}" "$PG_CTL" -D "$PG_TMP/data" -l "$PG_TMP/log" -w -t 60 \
        -o "-h 127.0.0.1 -p $PG_PORT -k $PG_TMP -c fsync=off -c full_page_writes=off" start >/dev/null
    export POOLED_TEST_PG="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
}

stop_test_postgres() {
    "${PG_AS[@]}" "$PG_CTL" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_TMP"
}
