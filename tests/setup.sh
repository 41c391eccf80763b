# Sourced by tests/run and .ci/run: brings a fresh machine to where every test can run
# (none skips): Debian packages, PostgreSQL up with a `test` database, the Python tools
# in .venv, and the variables the tests read. Each step is skipped when already done.

log() { printf '\n== %s\n' "$*"; }

# Debian packages a fresh machine may lack: PostgreSQL, and Chromium with its driver for
# the browser tests of the pages.
missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
# node and npm for the TypeScript client generated from the OpenAPI document.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# Dovecot, for the side-by-side benchmark (issue 18): IMAP, LMTP and its Xapian index.
[ -x /usr/sbin/dovecot ] || missing+=(dovecot-core)
[ -x /usr/lib/dovecot/imap ] || missing+=(dovecot-imapd)
[ -x /usr/lib/dovecot/lmtp ] || missing+=(dovecot-lmtpd)
[ -e /usr/lib/dovecot/modules/lib21_fts_xapian_plugin.so ] || missing+=(dovecot-fts-xapian)
# Debian's venv module needs ensurepip, which comes with python3-venv.
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# A PostgreSQL named by the caller is the caller's business; otherwise the local one.
if [ -z "${CONFIDE_TEST_POSTGRES_URL:-}" ]; then
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  log "starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do
    pg_isready -h 127.0.0.1 -p 5432 -q && break
    sleep 1
  done
  pg_isready -h 127.0.0.1 -p 5432
fi

if ! psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
  log "creating the test database"
  psql -h 127.0.0.1 -U postgres -d postgres -c 'CREATE DATABASE test' >/dev/null
fi
fi

if [ ! -x .venv/bin/python ] || [ ! -x .venv/bin/pip ]; then
  log "Python tools (.venv)"
  rm -rf .venv
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r tests/tools/requirements.txt

# The TypeScript generator, compiler and runtime, at the versions package-lock.json pins.
clients=tests/tools/clients
if [ ! -d "$clients/node_modules" ] || [ "$clients/package-lock.json" -nt "$clients/node_modules" ]; then
  log "TypeScript client tools ($clients/node_modules)"
  (cd "$clients" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$clients/node_modules"
fi

export CONFIDE_TEST_PYTHON="$PWD/.venv/bin/python"
export CONFIDE_TEST_POSTGRES_URL="${CONFIDE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
