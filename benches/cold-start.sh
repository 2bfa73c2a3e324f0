#!/usr/bin/env bash
# Cold start (issue 19): `labshare serve` on an SQLite database with 100,000 approved
# instruments already indexed — seconds from exec to the first 200 of /readyz, and to the first
# search page. Usage: benches/cold-start.sh [path/to/labshare] [runs]
# Needs curl, bc and the sqlite3 shell. The data directory is made under /tmp and removed.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-${CARGO_TARGET_DIR:-target}/release/labshare}"
RUNS="${2:-5}"
DIR="$(mktemp -d /tmp/labshare-cold-XXXXXX)"
trap 'rm -rf "$DIR"' EXIT
export LABSHARE_LOG=error LABSHARE_DATA_DIR="$DIR"
"$BIN" migrate >/dev/null
"$BIN" demo-data >/dev/null
# The demo's instruments, repeated (with a number in the name) up to 100,000 approved ones.
sqlite3 "$DIR/labshare.db" "
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 100000 - (SELECT COUNT(*) FROM instruments) - 1)
INSERT INTO instruments (unit_id, name, model, manufacturer, category_code, value_fen, usage_status, instrument_type, city, review_status, description, created_at, updated_at)
SELECT t.unit_id, t.name || ' ' || i, t.model, t.manufacturer, t.category_code, t.value_fen, t.usage_status, t.instrument_type, t.city, 'approved', t.description, 0, 0
FROM n JOIN (SELECT ROW_NUMBER() OVER (ORDER BY id) - 1 AS k, * FROM instruments) t ON t.k = i % (SELECT COUNT(*) FROM instruments);"
"$BIN" reindex >/dev/null
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
for _ in $(seq "$RUNS"); do
  start=$(date +%s.%N)
  LABSHARE_BIND="127.0.0.1:$PORT" "$BIN" serve >/dev/null 2>&1 &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz"; do sleep 0.02; done
  ready=$(date +%s.%N)
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/search?q=%E7%94%B5%E9%95%9C"
  first=$(date +%s.%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "ready $(echo "$ready - $start" | bc) s, first search page $(echo "$first - $start" | bc) s"
done
