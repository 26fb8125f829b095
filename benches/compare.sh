#!/usr/bin/env bash
#! Compares exflow's speed and memory with the floor (`cat`), tcpdump, ndpiReader, tshark and
#! argus on one capture, in one sitting, and prints a markdown table with ratios to tcpdump.
#! The capture is a large synthetic one (examples/gen_bench.rs) or any file given with -o (e.g.
#! the real-traffic mix of benches/build-mix.sh).
#!
#! Usage: benches/compare.sh [-n RUNS] [-p PACKETS] [-f FLOWS] [-s SEED] [-o FILE] [-t TIMEOUT]
#!   -n RUNS     runs per tool, the fastest counts (default 3)
#!   -p PACKETS  packets in the generated capture (default 5000000)
#!   -f FLOWS    flows open at once in the generated capture (default 300000)
#!   -s SEED     generator seed (default 1)
#!   -o FILE     capture to use; generated there if missing
#!               (default $TMPDIR/exflow-bench/bench-PACKETS-FLOWS-SEED.pcap)
#!   -t TIMEOUT  seconds before a single run is killed (default 1800)
#!
#! What is timed (each tool must read the whole file; output goes to /dev/null):
#!   cat         cat FILE                                     (reading from the page cache: the floor)
#!   tcpdump     tcpdump -r FILE -w /dev/null                 (read and copy: the reference)
#!   exflow-t1   exflow analyze --threads 1 FILE --format json  (only if `--threads` exists)
#!   exflow      exflow analyze FILE --format json            (the default)
#!   exflow-t2   exflow analyze --threads 2 FILE --format json  (a reader and two workers)
#!   exflow-read exflow analyze --no-mmap FILE --format json  (read calls instead of the memory map)
#!   ndpiReader  ndpiReader -i FILE -q                        (flows + DPI, quiet)
#!   tshark      tshark -q -z conv,tcp -z conv,udp -r FILE    (conversation tables)
#!   argus       argus -r FILE -w /dev/null                   (flow records)
#! Tools run in turns, round-robin, RUNS rounds: a slow minute of a busy machine then costs each
#! tool alike; the fastest run of each counts. A missing tool is reported as "not installed".
#! The file is read once beforehand so that every tool starts with it in the page cache.
#!
#! Tools (Debian 12 package names):
#!   apt-get install time tcpdump tshark libndpi-bin argus-server
#! `time` provides /usr/bin/time, which measures peak RSS; without it only seconds are shown.
#! ndpiReader is in `libndpi-bin` (not `ndpi`), argus in `argus-server`.

set -euo pipefail

RUNS=3
PACKETS=5000000
FLOWS=300000
SEED=1
FILE=""
TIMEOUT=1800

while getopts "n:p:f:s:o:t:h" opt; do
    case "$opt" in
        n) RUNS=$OPTARG ;;
        p) PACKETS=$OPTARG ;;
        f) FLOWS=$OPTARG ;;
        s) SEED=$OPTARG ;;
        o) FILE=$OPTARG ;;
        t) TIMEOUT=$OPTARG ;;
        *) tail -n +2 "$0" | sed -n 's/^#! \{0,1\}//p'; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d "${TMPDIR:-/tmp}/exflow-compare.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
DESC="$PACKETS packets, $FLOWS flows, seed $SEED"
if [[ -z $FILE ]]; then
    FILE="${TMPDIR:-/tmp}/exflow-bench/bench-$PACKETS-$FLOWS-$SEED.pcap"
elif [[ -s $FILE ]]; then
    DESC="given with -o" # not generated here: -p/-f/-s say nothing about it
fi
mkdir -p "$(dirname "$FILE")"

GNU_TIME=""
if [[ -x /usr/bin/time ]] && /usr/bin/time -f '%e %M' true 2>/dev/null; then
    GNU_TIME=/usr/bin/time
fi

echo "== building exflow (release)" >&2
EXFLOW="$ROOT/target/release/exflow"
if ! cargo build --release --bin exflow >&2; then
    echo "!! exflow failed to build; it is left out of the comparison" >&2
    EXFLOW=""
fi

if [[ ! -s $FILE ]]; then
    echo "== generating $FILE ($PACKETS packets, $FLOWS flows, seed $SEED)" >&2
    if ! cargo run --release --example gen_bench -- \
        --packets "$PACKETS" --flows "$FLOWS" --seed "$SEED" --out "$FILE.part" >&2; then
        echo "!! could not generate the capture (does the crate compile?)" >&2
        rm -f "$FILE.part"
        exit 1
    fi
    mv "$FILE.part" "$FILE"
fi
cat "$FILE" > /dev/null # warm the page cache

# run_once NAME CMD...: one run. Sets RUN_S, RUN_KIB (empty without GNU time) and RUN_RC.
run_once() {
    local name=$1
    shift
    RUN_S="" RUN_KIB="" RUN_RC=0
    if [[ -n $GNU_TIME ]]; then
        timeout "$TIMEOUT" "$GNU_TIME" -f '%e %M' -o "$WORK/time" "$@" \
            > /dev/null 2> "$WORK/stderr" || RUN_RC=$?
        read -r RUN_S RUN_KIB < <(tail -n 1 "$WORK/time") || true
    else
        local start end
        start=$(date +%s.%N)
        timeout "$TIMEOUT" "$@" > /dev/null 2> "$WORK/stderr" || RUN_RC=$?
        end=$(date +%s.%N)
        RUN_S=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
    fi
}

declare -A SECS MIB NOTE CMD
declare -A ARGV
TOOLS=(cat tcpdump exflow-t1 exflow exflow-t2 exflow-read ndpiReader tshark argus)
CMD[cat]="cat FILE"
CMD[tcpdump]="tcpdump -r FILE -w /dev/null"
CMD[exflow-t1]="exflow analyze --threads 1 FILE --format json"
CMD[exflow]="exflow analyze FILE --format json"
CMD[exflow-t2]="exflow analyze --threads 2 FILE --format json"
CMD[exflow-read]="exflow analyze --no-mmap FILE --format json"
CMD[ndpiReader]="ndpiReader -i FILE -q"
CMD[tshark]="tshark -q -z conv,tcp -z conv,udp -r FILE"
CMD[argus]="argus -r FILE -w /dev/null"

# The tools to run, with their argument vectors (NUL-separated in ARGV).
ACTIVE=()
for tool in "${TOOLS[@]}"; do
    case $tool in
        cat) run=(cat "$FILE") ;;
        tcpdump) run=(tcpdump -r "$FILE" -w /dev/null) ;;
        exflow-t1 | exflow | exflow-t2 | exflow-read)
            if [[ -z $EXFLOW || ! -x $EXFLOW ]]; then NOTE[$tool]="build failed"; continue; fi
            if [[ $tool == exflow-t1 ]]; then
                # `--threads` arrives with sharded analysis; before it, one thread is the default.
                if ! "$EXFLOW" analyze --help | grep -q -- '--threads'; then
                    NOTE[$tool]="no --threads option (same as the default)"
                    continue
                fi
                run=("$EXFLOW" analyze --threads 1 -q "$FILE" --format json)
            elif [[ $tool == exflow-t2 ]]; then
                if ! "$EXFLOW" analyze --help | grep -q -- '--threads'; then
                    NOTE[$tool]="no --threads option"
                    continue
                fi
                run=("$EXFLOW" analyze --threads 2 -q "$FILE" --format json)
            elif [[ $tool == exflow-read ]]; then
                run=("$EXFLOW" analyze --no-mmap -q "$FILE" --format json)
            else
                run=("$EXFLOW" analyze -q "$FILE" --format json)
            fi ;;
        ndpiReader) run=(ndpiReader -i "$FILE" -q) ;;
        tshark) run=(tshark -q -z conv,tcp -z conv,udp -r "$FILE") ;;
        argus) run=(argus -r "$FILE" -w /dev/null) ;;
    esac
    if ! command -v "${run[0]}" > /dev/null; then
        NOTE[$tool]="not installed"
        continue
    fi
    ARGV[$tool]=$(printf '%s\0' "${run[@]}" | base64 -w0)
    ACTIVE+=("$tool")
done

for ((i = 1; i <= RUNS; i++)); do
    echo "== round $i of $RUNS" >&2
    for tool in "${ACTIVE[@]}"; do
        [[ -n ${NOTE[$tool]:-} ]] && continue # failed in an earlier round
        mapfile -d '' -t run < <(base64 -d <<< "${ARGV[$tool]}")
        run_once "$tool" "${run[@]}"
        if ((RUN_RC != 0)); then
            NOTE[$tool]="failed (exit $RUN_RC)"
            [[ $RUN_RC == 124 ]] && NOTE[$tool]="timed out after ${TIMEOUT}s"
            echo "!! $tool failed with exit status $RUN_RC:" >&2
            tail -n 5 "$WORK/stderr" | sed 's/^/   /' >&2
            SECS[$tool]="" MIB[$tool]=""
            continue
        fi
        echo "   $tool: ${RUN_S}s${RUN_KIB:+ $((RUN_KIB / 1024)) MiB}" >&2
        if [[ -z ${SECS[$tool]:-} ]] || awk -v a="$RUN_S" -v b="${SECS[$tool]}" 'BEGIN { exit !(a < b) }'; then
            SECS[$tool]=$RUN_S
        fi
        # Peak RSS: the largest of the runs (the memory a user must have).
        if [[ -n $RUN_KIB ]]; then
            mib=$(awk -v k="$RUN_KIB" 'BEGIN { printf "%.1f", k / 1024 }')
            if [[ -z ${MIB[$tool]:-} ]] || awk -v a="$mib" -v b="${MIB[$tool]}" 'BEGIN { exit !(a > b) }'; then
                MIB[$tool]=$mib
            fi
        fi
    done
done

ratio() { # ratio A B: A / B to two decimals, or "-" when either is missing or B is 0
    if [[ -n ${1:-} && -n ${2:-} ]]; then
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'
    else
        echo "-"
    fi
}

size_mib=$(($(stat -c %s "$FILE") / 1048576))
packets=$(capinfos -c -M "$FILE" 2> /dev/null | awk -F: '/Number of packets/ { gsub(/ /, "", $2); print $2 }' || true)
echo
echo "Capture: \`$FILE\` ($size_mib MiB${packets:+, $packets packets}; $DESC)." \
    "Best of $RUNS runs, tools in turns; $(nproc) CPUs; $(date -u +%Y-%m-%d)."
echo
echo "| tool | command | seconds | peak RSS MiB | time vs tcpdump | RSS vs tcpdump |"
echo "|---|---|---:|---:|---:|---:|"
for tool in "${TOOLS[@]}"; do
    if [[ -z ${SECS[$tool]:-} ]]; then
        echo "| $tool | \`${CMD[$tool]}\` | ${NOTE[$tool]:-n/a} | | | |"
        continue
    fi
    mib=${MIB[$tool]:-n/a}
    rss_ratio="-"
    [[ $mib != n/a && -n ${MIB[tcpdump]:-} ]] && rss_ratio=$(ratio "$mib" "${MIB[tcpdump]}")
    echo "| $tool | \`${CMD[$tool]}\` | ${SECS[$tool]} | $mib |" \
        "$(ratio "${SECS[$tool]}" "${SECS[tcpdump]:-}") | $rss_ratio |"
done
