#!/usr/bin/env bash
# `make conformance`: the MCP project's server conformance suite against our HTTP transport.
# Installs pinned @modelcontextprotocol/conformance (and Node 22, which it needs) from npm into
# .conformance/, starts `aletheia-mcp serve --transport http` on a free port with a temporary
# data directory, runs every server scenario, and checks the result against the baseline of
# expected failures (scripts/conformance-expected-failures.yml). Results: bench/results/conformance/.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFORMANCE_VERSION=0.1.16
NODE_VERSION=22
PREFIX=.conformance
if [ ! -x "$PREFIX/node_modules/.bin/node" ] || [ ! -d "$PREFIX/node_modules/@modelcontextprotocol/conformance" ]; then
  mkdir -p "$PREFIX"
  npm install --silent --prefix "$PREFIX" "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" "node@$NODE_VERSION"
fi
DATA=$(mktemp -d)
PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ALETHEIA_DATA_DIR="$DATA" EMBEDDING_PROVIDER=hashing LOG_LEVEL=WARNING \
  .venv/bin/aletheia-mcp serve --transport http --port "$PORT" 2>"$DATA/server.log" &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.2
done
OUT=bench/results/conformance
mkdir -p "$OUT"
status=0
"$PREFIX/node_modules/.bin/node" "$PREFIX/node_modules/@modelcontextprotocol/conformance/dist/index.js" \
  server --url "http://127.0.0.1:$PORT/mcp" --expected-failures scripts/conformance-expected-failures.yml \
  -o "$OUT" > "$OUT/run.log" 2>&1 || status=$?
sed -n '/=== SUMMARY ===/,$p' "$OUT/run.log"
exit "$status"
