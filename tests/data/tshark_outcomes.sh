#!/usr/bin/env bash
# Regenerates tests/data/tshark_outcomes.tsv: per corpus file, how many TCP connection attempts
# were unanswered and how many refused, judged from tshark's own TCP conversation tracking
# (`tcp.stream`: SYN retransmissions stay in one stream, a new SYN after FIN/RST starts another).
# Per stream, the opener is the sender of the first pure SYN (wherever it falls in the stream: a
# capture may hold the answer before the SYN):
#   unanswered = the opener sent only SYNs (no ACKs, so no sign of a reply) and the other side
#                sent nothing;
#   refused    = the opener sent a SYN and the other side sent only RSTs.
# Frames that are ICMP errors are left out (tshark decodes the TCP header they quote).
#
#   bash tests/data/tshark_outcomes.sh > tests/data/tshark_outcomes.tsv
#
# Generated with TShark (Wireshark) 4.0.17 (Debian 12 package tshark 4.0.17-0+deb12u3).
set -euo pipefail
cd "$(dirname "$0")"
printf 'file\tunanswered\trefused\n'
cut -f1 corpus/MANIFEST.tsv | tail -n +2 | while IFS= read -r f; do
  tshark -n -r "corpus/$f" -Y 'tcp && !icmp && !icmpv6' -T fields -E separator=/t \
      -E occurrence=f -e tcp.stream -e ip.src -e ipv6.src -e tcp.srcport -e tcp.flags.syn \
      -e tcp.flags.ack -e tcp.flags.reset 2>/dev/null |
    awk -F'\t' -v file="$f" '
      function on(v) { return v == "1" || v == "True" }
      {
        s = $1; who = $2 $3 ":" $4; syn = on($5); ack = on($6); rst = on($7)
        n[s]++; w[s, n[s]] = who; pure[s, n[s]] = syn && !ack; isrst[s, n[s]] = rst
        if (syn && !ack && !(s in opener)) opener[s] = who
      }
      END {
        for (s in opener) {
          replies = 0; nonrst = 0; more = 0
          for (i = 1; i <= n[s]; i++) {
            if (w[s, i] == opener[s]) { if (!pure[s, i]) more = 1 }
            else { replies++; if (!isrst[s, i]) nonrst = 1 }
          }
          if (replies == 0 && !more) u++
          else if (replies > 0 && !nonrst) r++
        }
        if (u + r > 0) printf "%s\t%d\t%d\n", file, u, r
      }'
done
