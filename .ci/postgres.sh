# Source me: start_test_postgres starts a throw-away PostgreSQL server on 127.0.0.1 and exports
# OSO_TEST_POSTGRES_URL; stop_test_postgres stops it and removes its data directory.
start_test_postgres() {
  local bindir
  bindir=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
  PGTEST_DIR=$(mktemp -d /tmp/oso-pg.XXXXXX)
  chown postgres "$PGTEST_DIR" 2>/dev/null || true
  local port=${OSO_TEST_PG_PORT:-55432}
  local as=()
  [[ $(id -u) == 0 ]] && as=(runuser -u postgres --)
  "${as[@]}" "$bindir/initdb" -D "$PGTEST_DIR/data" -U oso --auth=trust -E UTF8 >/dev/null
  "${as[@]}" "$bindir/pg_ctl" -D "$PGTEST_DIR/data" -l "$PGTEST_DIR/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PGTEST_DIR -c fsync=off" start >/dev/null
  "${as[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U oso oso_test
  export PGTEST_DIR PGTEST_BINDIR="$bindir"
  export OSO_TEST_POSTGRES_URL="postgresql+psycopg://oso@127.0.0.1:$port/oso_test"
  echo "ci: PostgreSQL running at $OSO_TEST_POSTGRES_URL"
}

stop_test_postgres() {
  [[ -n ${PGTEST_DIR:-} ]] || return 0
  local as=()
  [[ $(id -u) == 0 ]] && as=(runuser -u postgres --)
  "${as[@]}" "$PGTEST_BINDIR/pg_ctl" -D "$PGTEST_DIR/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$PGTEST_DIR"
}
