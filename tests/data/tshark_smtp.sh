#!/usr/bin/env bash
# Regenerates tests/data/tshark_smtp.tsv: for every capture in tests/data/corpus/ in which tshark
# decodes SMTP replies, per TCP connection (client, server) the multiset of `smtp.response.code`
# values, as `code:count` pairs in code order. tshark gives one code per reply (a multi-line reply
# is one), which is what exflow's per-session `smtp.replies` counts. tshark decodes tcp/587 as
# SMTP by default; tests/smtp_corpus.rs maps 587 to a tracked service for these files.
#
#   bash tests/data/tshark_smtp.sh > tests/data/tshark_smtp.tsv
#
# Generated with TShark (Wireshark) 4.0.17 (Debian 12 package tshark 4.0.17-0+deb12u3).
set -euo pipefail
cd "$(dirname "$0")"

printf 'file\tclient\tserver\treplies\n'
cut -f1 corpus/MANIFEST.tsv | tail -n +2 | while IFS= read -r f; do
  tshark -n -r "corpus/$f" -Y smtp.response.code -T fields -E separator=/t -E occurrence=a \
      -E aggregator=, -e ip.src -e ipv6.src -e tcp.srcport -e ip.dst -e ipv6.dst -e tcp.dstport \
      -e smtp.response.code 2>/dev/null |
    awk -F'\t' -v file="$f" '
      {
        server = ($1 != "" ? $1 : "[" $2 "]") ":" $3
        client = ($4 != "" ? $4 : "[" $5 "]") ":" $6
        n = split($7, codes, ",")
        for (i = 1; i <= n; i++) count[client "\t" server, codes[i]]++
      }
      END {
        for (k in count) {
          split(k, kk, SUBSEP)
          print kk[1] "\t" kk[2] "\t" count[k]
        }
      }' |
    sort -t$'\t' -k1,1 -k2,2 -k3,3n |
    awk -F'\t' -v file="$f" '
      {
        key = $1 "\t" $2
        if (key != last && last != "") { print file "\t" last "\t" list; list = "" }
        list = (list == "" ? "" : list ",") $3 ":" $4
        last = key
      }
      END { if (last != "") print file "\t" last "\t" list }'
done
