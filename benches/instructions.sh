#!/usr/bin/env bash
# Instructions per packet of `exflow analyze`, counted by callgrind: the same on every run, so a
# change of a few per cent shows where wall times on a shared machine swing by more (README,
# Benchmarks). Counts everything the run executes: reading, analysis, the final report.
#
#   benches/instructions.sh [-p PACKETS] [-b BINARY] [-t "1 2"] FILE
#
# Cuts the first PACKETS packets (default 300 000) of FILE with tcpdump, then runs BINARY
# (default target/release/exflow) under `valgrind --tool=callgrind` with each --threads value
# (callgrind runs threads one at a time, so the counts add every thread's work). Prints one
# markdown row per thread count. Needs valgrind and tcpdump (`apt-get install valgrind tcpdump`).
set -euo pipefail

packets=300000
bin=target/release/exflow
threads="1 2"
while getopts "p:b:t:" o; do
    case $o in
        p) packets=$OPTARG ;;
        b) bin=$OPTARG ;;
        t) threads=$OPTARG ;;
        *) echo "usage: $0 [-p PACKETS] [-b BINARY] [-t \"1 2\"] FILE" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -eq 1 ]] || { echo "usage: $0 [-p PACKETS] [-b BINARY] [-t \"1 2\"] FILE" >&2; exit 2; }
file=$1
for tool in valgrind tcpdump; do
    command -v $tool >/dev/null || { echo "$0: $tool is not installed" >&2; exit 1; }
done
[[ -x $bin ]] || { echo "$0: $bin: not built (cargo build --release)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tcpdump -r "$file" -c "$packets" -w "$work/cut.pcap" 2>/dev/null
# The packets the cut holds, as exflow counts them (the file's entry in the report comes first).
"$bin" analyze -q "$work/cut.pcap" --format json >"$work/report.json"
got=$(sed -n 's/^ *"packets": \([0-9]*\),$/\1/p' "$work/report.json" | sed -n 1p)

echo "| threads | packets | instructions | per packet |"
echo "|---:|---:|---:|---:|"
for t in $threads; do
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
        "$bin" analyze -q --threads "$t" "$work/cut.pcap" --format json \
        >/dev/null 2>"$work/err"
    ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$work/err" | tail -1)
    [[ -n $ir ]] || { echo "$0: callgrind reported no count" >&2; cat "$work/err" >&2; exit 1; }
    echo "| $t | $got | $ir | $((ir / got)) |"
done
