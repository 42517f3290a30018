#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ answer on 127.0.0.1 before tests or a local run, and that
# this user can log in to PostgreSQL as the services' default URLs do (no user and no password
# in them: libpq's defaults, the login name and ~/.pgpass). Installs them from Debian's packages
# when missing and we are root; starts them when stopped. PGPORT chooses another PostgreSQL.
set -euo pipefail
pg_port=${PGPORT:-5432}
user=$(id -un)

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 120); do
    port_open "$port" && return 0
    sleep 0.5
  done
  echo "ensure-services: $name did not come up on port $port" >&2
  exit 1
}

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "ensure-services: $* missing and not root; install it (sudo apt-get install $*)" >&2
    exit 1
  fi
  [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! port_open "$pg_port"; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  version=$(ls /etc/postgresql | sort -n | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port "$pg_port" PostgreSQL
fi

can_log_in() { psql -h 127.0.0.1 -p "$pg_port" -d postgres -Atqc 'select 1' >/dev/null 2>&1; }

# PostgreSQL as Debian installs it asks for a password over TCP and has no role for this user:
# one is made (as the postgres OS user, which Debian lets in through the socket), with a random
# password kept in ~/.pgpass. pg_hba.conf is left as it is.
if ! can_log_in; then
  if [ "$(id -u)" != 0 ]; then
    cat >&2 <<MESSAGE
ensure-services: PostgreSQL on 127.0.0.1:$pg_port does not let $user in. Make a role for $user
and keep its password in ~/.pgpass, then run make again:
  sudo -u postgres createuser --createdb --pwprompt $user
  echo '127.0.0.1:$pg_port:*:$user:<the password>' >> ~/.pgpass && chmod 600 ~/.pgpass
MESSAGE
    exit 1
  fi
  password=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
  (cd / && runuser -u postgres -- psql -p "$pg_port" -d postgres -v ON_ERROR_STOP=1 -Atq \
      -v role="$user" -v password="$password") <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'password') \gexec
SQL
  pgpass=${PGPASSFILE:-$HOME/.pgpass}
  touch "$pgpass"
  chmod 600 "$pgpass"
  { grep -v "^127\.0\.0\.1:$pg_port:\*:$user:" "$pgpass" || true
    echo "127.0.0.1:$pg_port:*:$user:$password"; } > "$pgpass.new"
  chmod 600 "$pgpass.new"
  mv "$pgpass.new" "$pgpass"
  if ! can_log_in; then
    echo "ensure-services: PostgreSQL still refuses $user after making its role" >&2
    exit 1
  fi
  echo "ensure-services: made the PostgreSQL role $user (its password is in $pgpass)"
fi

if ! port_open 5672; then
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  rabbitmq-server -detached || true
  wait_port 5672 RabbitMQ
fi
