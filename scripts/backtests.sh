#!/usr/bin/env bash
# Regenerate the backtest tables of BENCHMARKS.md ("Backtests on real traces"): builds the
# release harness, replays every trace in data/traces through all six policies and prints
# the tables as Markdown on stdout, each under the exact command that produced it.
#
#   scripts/backtests.sh > /tmp/backtests.md
#
# Runs: NASA July 1995 with its events; World Cup 1998 group stage with the match calendar
# at --startup 3m and 10m; the AWS ELB trace (5-minute steps) with the defaults and with a
# 6-minute scale-down stabilization window (see BENCHMARKS.md for why both).
set -euo pipefail

cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --release --workspace --quiet
harness="$target_dir/release/prescale-harness"
traces=data/traces

# The World Cup trace starts 1998-04-30 21:30 UTC; 40d2h30m of warm-up puts the first scored
# step at 1998-06-10 00:00 UTC, the day of the first group match, so that the scored range is
# the whole group stage (06-10 .. 06-26) and the fits see the 40 days before it (the opening
# parade of 06-09 included, which teaches the `ceremony` kind).
runs=(
  "NASA July 1995, with its event calendar|--trace $traces/nasa-http-1995-07.per-minute.csv --events $traces/nasa-http-1995-07.events.csv"
  "World Cup 1998 group stage, match calendar, --startup 3m|--trace $traces/worldcup98-1998-04-30_06-26.per-minute.csv --events $traces/worldcup98-1998-04-30_06-26.events.csv --warmup 40d2h30m --startup 3m"
  "World Cup 1998 group stage, match calendar, --startup 10m|--trace $traces/worldcup98-1998-04-30_06-26.per-minute.csv --events $traces/worldcup98-1998-04-30_06-26.events.csv --warmup 40d2h30m --startup 10m"
  "AWS ELB request count (NAB), 5-minute steps, defaults|--trace $traces/nab-aws-elb-request-count-8c0756.per-5min.csv"
  "AWS ELB request count (NAB), 5-minute steps, --scale-down-stabilization 6m|--trace $traces/nab-aws-elb-request-count-8c0756.per-5min.csv --scale-down-stabilization 6m"
)

for run in "${runs[@]}"; do
  title="${run%%|*}"
  args="${run#*|}"
  echo "### $title"
  echo
  echo '```sh'
  echo "prescale-harness backtest $args"
  echo '```'
  echo
  started=$(date +%s%N)
  # shellcheck disable=SC2086 # the arguments are meant to split
  "$harness" backtest $args --format markdown
  tenths=$((($(date +%s%N) - started) / 100000000))
  echo
  echo "($((tenths / 10)).$((tenths % 10)) s wall)"
  echo
done
