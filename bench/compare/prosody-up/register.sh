#!/bin/bash
# Create accounts in the Prosody behind xedge: bench/prosody/register.sh (prosodyctl shell on
# the admin socket in BENCH_TARGET_DIR), unchanged.   usage: register.sh PREFIX FIRST COUNT PASSWORD
exec "$(cd "$(dirname "$0")" && pwd)/../../prosody/register.sh" "$@"
