#!/usr/bin/env bash
#! Builds the real-traffic mix of the benchmarks from nDPI's public test captures
#! (https://github.com/ntop/nDPI, tests/cfgs/default/pcap: a few hundred captures of real
#! applications, about 36 MiB): every Ethernet packet of every capture, the captures moved to
#! start within 5 minutes of each other and merged by time, then COPIES copies of that on shifted
#! addresses (examples/build_mix.rs), staggered 10 s apart.
#!
#! Usage: benches/build-mix.sh [-c COPIES] [-s SRC] [-o OUT]
#!   -c COPIES  copies of the merged captures (default 30: about 3-4 M packets)
#!   -s SRC     a directory of capture files to use instead of nDPI's (e.g. /work/shared/corpus),
#!              or a clone of nDPI (its tests/cfgs/default/pcap is used)
#!   -o OUT     output file (default /work/bench/mix.pcap; keep it out of the repository)
#!
#! Without -s, nDPI is fetched with `git clone --depth 1` into the output's directory (about
#! 200 MiB). The same sources and COPIES give the same file.

set -euo pipefail

COPIES=30
SRC=""
OUT=/work/bench/mix.pcap

while getopts "c:s:o:h" opt; do
    case "$opt" in
        c) COPIES=$OPTARG ;;
        s) SRC=$OPTARG ;;
        o) OUT=$OPTARG ;;
        *) tail -n +2 "$0" | sed -n 's/^#! \{0,1\}//p'; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
mkdir -p "$(dirname "$OUT")"
if [[ -z $SRC ]]; then
    SRC="$(dirname "$OUT")/nDPI"
    if [[ ! -d $SRC ]]; then
        echo "== cloning nDPI into $SRC" >&2
        git clone --depth 1 https://github.com/ntop/nDPI.git "$SRC" >&2
    fi
fi
if [[ -d $SRC/tests/cfgs/default/pcap ]]; then
    SRC=$SRC/tests/cfgs/default/pcap
fi
echo "== building the mix from $SRC ($COPIES copies)" >&2
cargo run --release --example build_mix -- --copies "$COPIES" --out "$OUT.part" "$SRC" >&2
mv "$OUT.part" "$OUT"
ls -l "$OUT" >&2
