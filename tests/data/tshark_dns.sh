#!/usr/bin/env bash
# Regenerates tests/data/tshark_dns.tsv: for every capture in tests/data/corpus/ with DNS on port
# 53 (UDP or TCP), what tshark decodes: the query messages by type of their (first) question
# (`dns.qry.type`), the response messages by `dns.flags.rcode`, and the unanswered transactions:
# queries tshark links to no response (`dns.response_in`, two-pass) that are not retransmissions
# (`dns.retransmission`). Types and rcodes are numbers; tests/dns_corpus.rs compares them with
# exflow's names. DNS messages quoted inside ICMP errors are left out (exflow reads them as
# the error they are, not as DNS).
#
#   bash tests/data/tshark_dns.sh > tests/data/tshark_dns.tsv
#
# Generated with TShark (Wireshark) 4.0.17 (Debian 12 package tshark 4.0.17-0+deb12u3).
set -euo pipefail
cd "$(dirname "$0")"

printf 'file\tqtypes\trcodes\tunanswered\n'
cut -f1 corpus/MANIFEST.tsv | tail -n +2 | while IFS= read -r f; do
  tshark -2 -n -r "corpus/$f" -Y 'dns && !icmp && (udp.port == 53 || tcp.port == 53)' -T fields \
      -E separator=/t -E occurrence=a -E aggregator=';' \
      -e dns.flags.response -e dns.flags.rcode -e dns.qry.type -e dns.response_in \
      -e dns.retransmission 2>/dev/null |
    awk -F'\t' -v file="$f" '
      {
        # One frame may carry several messages (DNS over TCP): the fields are lists.
        n = split($1, resp, ";"); split($2, rc, ";"); split($3, qt, ";")
        split($4, rin, ";"); split($5, rtx, ";")
        for (i = 1; i <= n; i++) {
          any = 1
          if (resp[i] == "0") {
            if (qt[i] != "") q[qt[i]]++
            if (rin[i] == "" && rtx[i] != "1") un++
          } else {
            r[rc[i]]++
          }
        }
      }
      END {
        if (!any) exit
        qs = ""; for (k in q) qs = qs (qs == "" ? "" : ",") k ":" q[k]
        rs = ""; for (k in r) rs = rs (rs == "" ? "" : ",") k ":" r[k]
        printf "%s\t%s\t%s\t%d\n", file, qs, rs, un
      }'
done
