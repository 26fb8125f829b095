#!/usr/bin/env bash
# Regenerates tests/data/tshark_reference.tsv: for every capture in tests/data/corpus/ and every
# catalogue service, the packets and wire bytes tshark counts on that service's ports. The port
# lists below are written from DESIGN.md's table (KB 278339) and the entries DESIGN.md names as
# beyond it (RAS, submission, CLDAP, Kerberos, SMB, NetBIOS session), independently of exflow's
# code.
# tshark decodes each frame once (`-T fields`: frame length, TCP and UDP ports); awk adds up the
# frames whose TCP/UDP source or destination port is one of a service's ports, i.e. what the
# display filter `tcp.port==N` counts. Frames that are ICMP errors are left out (tshark decodes
# the packet an ICMP error quotes; exflow counts the error on the flow's outcome, not its
# packets). IP reassembly is off so each frame stands alone; a trailing IPv4 fragment (offset > 0,
# no transport header of its own) takes the ports of its first fragment (same source,
# destination, protocol and IP id), since it is part of the same datagram.
# A TCP connection whose SYN (or, failing that, SYN-ACK) was captured counts only under its
# server's port, the SYN's destination: a Windows client port such as 3268 or 1731 names no
# service (README, "Classification").
#
#   bash tests/data/tshark_reference.sh > tests/data/tshark_reference.tsv
#
# Generated with TShark (Wireshark) 4.0.17 (Debian 12 package tshark 4.0.17-0+deb12u3).
set -euo pipefail
cd "$(dirname "$0")"

services='ldap tcp/389
ldap_ssl tcp/636
ldap_srs tcp/379
ldap_alt tcp/390
gc tcp/3268
gc_ssl tcp/3269
imap4 tcp/143
imap4_ssl tcp/993
pop3 tcp/110
pop3_ssl tcp/995
nntp tcp/119
nntp_ssl tcp/563
http+rvp tcp/80
https tcp/443
smtp tcp/25
smtp_ssl tcp/465
smtp_lsa tcp/691
irc tcp/6667,tcp/7000
irc_ssl tcp/994
x400 tcp/102
msrpc tcp/135
t120 tcp/1503
uls tcp/522
h323 tcp/1720
h323_ras udp/1719
audio tcp/1731
dns tcp/53,udp/53
submission tcp/587
cldap udp/389
kerberos tcp/88,udp/88
smb tcp/445
netbios_ssn tcp/139'

printf 'file\tservice\tports\tpackets\tbytes\n'
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
cut -f1 corpus/MANIFEST.tsv | tail -n +2 | while IFS= read -r f; do
  tshark -n -r "corpus/$f" -o ip.defragment:FALSE -o ipv6.defragment:FALSE -T fields \
      -E separator=/t -E occurrence=f \
      -e frame.len -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport \
      -e icmp.type -e icmpv6.type \
      -e ip.src -e ip.dst -e ip.proto -e ip.id -e ip.frag_offset \
      -e ipv6.src -e ipv6.dst -e ipv6.fraghdr.ident -e ipv6.fraghdr.offset \
      -e tcp.stream -e tcp.flags.syn -e tcp.flags.ack 2>/dev/null >"$tmp"
  awk -F'\t' -v file="$f" -v services="$services" '
      BEGIN {
        n = split(services, lines, "\n")
        for (i = 1; i <= n; i++) {
          split(lines[i], w, " "); name[i] = w[1]; plist[i] = w[2]
          k = split(w[2], ps, ",")
          for (j = 1; j <= k; j++) { split(ps[j], pp, "/"); want[i, pp[1], pp[2]] = 1 }
        }
      }
      # First pass: the server port of each TCP stream whose opening was captured.
      NR == FNR {
        if ($6 == "" && $7 == "" && $17 != "" && $18 == 1) {
          if ($19 == 0 && !($17 in syn)) syn[$17] = $3
          if ($19 == 1 && !($17 in synack)) synack[$17] = $2
        }
        next
      }
      $6 != "" || $7 != "" { next }
      {
        if ($15 != "") { frag = $13 SUBSEP $14 SUBSEP $15; off = $16 }
        else { frag = $8 SUBSEP $9 SUBSEP $10 SUBSEP $11; off = $12 }
        if (off != "" && off > 0 && (frag in fport)) {
          split(fport[frag], fp, SUBSEP); $2 = fp[1]; $3 = fp[2]; $4 = fp[3]; $5 = fp[4]
        } else if ($11 != "" || $15 != "") {
          fport[frag] = $2 SUBSEP $3 SUBSEP $4 SUBSEP $5
        }
        server = ""
        if ($17 in syn) server = syn[$17]
        else if ($17 in synack) server = synack[$17]
        for (i = 1; i <= n; i++) {
          if (server != "") hit = want[i, "tcp", server]
          else hit = (($2 != "") && (want[i, "tcp", $2] || want[i, "tcp", $3])) ||
                     (($4 != "") && (want[i, "udp", $4] || want[i, "udp", $5]))
          if (hit) { pk[i]++; by[i] += $1 }
        }
      }
      END {
        for (i = 1; i <= n; i++)
          if (pk[i] > 0) printf "%s\t%s\t%s\t%d\t%d\n", file, name[i], plist[i], pk[i], by[i]
      }' "$tmp" "$tmp"
done
