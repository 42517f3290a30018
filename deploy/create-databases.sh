#!/usr/bin/env bash
# Creates each service's database when it is missing (each service migrates its own at start).
set -euo pipefail
PSQL=(psql -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -v ON_ERROR_STOP=1 -Atq)
for name in helpdesk_auth helpdesk_tickets helpdesk_notifier helpdesk_panel; do
  if [ -z "$("${PSQL[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$name'")" ]; then
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE $name"
    echo "created database $name"
  fi
done
