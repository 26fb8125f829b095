#!/usr/bin/env bash
#! Compares exflow's speed and memory with tcpdump, tshark and ndpiReader on one large synthetic
#! capture (examples/gen_bench.rs), and prints a markdown table.
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
#! What is timed (each tool must read the whole file):
#!   exflow      target/release/exflow analyze FILE --format json > /dev/null
#!   tcpdump     tcpdump -r FILE -w /dev/null                (read and copy: the I/O floor)
#!   tshark      tshark -q -z conv,tcp -z conv,udp -r FILE   (conversation tables)
#!   ndpiReader  ndpiReader -i FILE -q                        (flows + DPI, quiet)
#! A missing tool is reported as "not installed". The file is read once beforehand so that every
#! tool starts with it in the page cache.
#!
#! Tools (Debian 12 package names):
#!   apt-get install time tcpdump tshark libndpi-bin
#! `time` provides /usr/bin/time, which measures peak RSS; without it only seconds are shown.
#! ndpiReader is in `libndpi-bin` (not `ndpi`).

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

# measure NAME CMD...: best of $RUNS runs. Sets RESULT_S, RESULT_MIB (or n/a) and RESULT_NOTE.
measure() {
    local name=$1
    shift
    RESULT_S="" RESULT_MIB="n/a" RESULT_NOTE=""
    local i secs kib rc
    for ((i = 1; i <= RUNS; i++)); do
        rc=0
        if [[ -n $GNU_TIME ]]; then
            timeout "$TIMEOUT" "$GNU_TIME" -f '%e %M' -o "$WORK/time" "$@" \
                > /dev/null 2> "$WORK/stderr" || rc=$?
            read -r secs kib < <(tail -n 1 "$WORK/time") || true
        else
            local start end
            start=$(date +%s.%N)
            timeout "$TIMEOUT" "$@" > /dev/null 2> "$WORK/stderr" || rc=$?
            end=$(date +%s.%N)
            secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
            kib=""
        fi
        if ((rc != 0)); then
            RESULT_NOTE="failed (exit $rc)"
            echo "!! $name failed with exit status $rc:" >&2
            tail -n 5 "$WORK/stderr" | sed 's/^/   /' >&2
            [[ $rc == 124 ]] && RESULT_NOTE="timed out after ${TIMEOUT}s"
            RESULT_S="" RESULT_MIB="n/a"
            return
        fi
        echo "   $name run $i: ${secs}s ${kib:+$((kib / 1024)) MiB}" >&2
        if [[ -z $RESULT_S ]] || awk -v a="$secs" -v b="$RESULT_S" 'BEGIN { exit !(a < b) }'; then
            RESULT_S=$secs
            if [[ -n $kib ]]; then RESULT_MIB=$(awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }'); fi
        fi
    done
}

declare -A SECS MIB NOTE CMD
TOOLS=(exflow tcpdump tshark ndpiReader)
CMD[exflow]="exflow analyze FILE --format json"
CMD[tcpdump]="tcpdump -r FILE -w /dev/null"
CMD[tshark]="tshark -q -z conv,tcp -z conv,udp -r FILE"
CMD[ndpiReader]="ndpiReader -i FILE -q"

for tool in "${TOOLS[@]}"; do
    case $tool in
        exflow)
            if [[ -z $EXFLOW || ! -x $EXFLOW ]]; then NOTE[$tool]="build failed"; continue; fi
            run=("$EXFLOW" analyze "$FILE" --format json) ;;
        tcpdump) run=(tcpdump -r "$FILE" -w /dev/null) ;;
        tshark) run=(tshark -q -z conv,tcp -z conv,udp -r "$FILE") ;;
        ndpiReader) run=(ndpiReader -i "$FILE" -q) ;;
    esac
    if ! command -v "${run[0]}" > /dev/null; then
        NOTE[$tool]="not installed"
        continue
    fi
    echo "== $tool: ${CMD[$tool]} (best of $RUNS)" >&2
    measure "$tool" "${run[@]}"
    SECS[$tool]=$RESULT_S
    MIB[$tool]=$RESULT_MIB
    NOTE[$tool]=$RESULT_NOTE
done

ratio() { # ratio A B: A / B to two decimals, or "-" when either is missing or B is 0
    if [[ -n ${1:-} && -n ${2:-} ]]; then
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'
    else
        echo "-"
    fi
}

size_mib=$(($(stat -c %s "$FILE") / 1048576))
echo
echo "Capture: \`$FILE\` ($size_mib MiB; $DESC)." \
    "Best of $RUNS runs; $(nproc) CPUs."
echo
echo "| tool | command | seconds | peak RSS MiB | time vs exflow | RSS vs exflow |"
echo "|---|---|---:|---:|---:|---:|"
for tool in "${TOOLS[@]}"; do
    if [[ -z ${SECS[$tool]:-} ]]; then
        echo "| $tool | \`${CMD[$tool]}\` | ${NOTE[$tool]:-n/a} | | | |"
        continue
    fi
    mib=${MIB[$tool]}
    rss_ratio="-"
    [[ $mib != n/a && ${MIB[exflow]:-n/a} != n/a ]] && rss_ratio=$(ratio "$mib" "${MIB[exflow]}")
    echo "| $tool | \`${CMD[$tool]}\` | ${SECS[$tool]} | $mib |" \
        "$(ratio "${SECS[$tool]}" "${SECS[exflow]:-}") | $rss_ratio |"
done
if [[ -n ${SECS[exflow]:-} && -n ${SECS[tcpdump]:-} ]]; then
    echo
    echo "exflow takes $(ratio "${SECS[exflow]}" "${SECS[tcpdump]}")x the time of" \
        "\`tcpdump -r FILE -w /dev/null\` (reading and copying the file)."
fi
