#!/usr/bin/env bash
# Regenerates tests/data/tshark_ldap.tsv: for every capture in tests/data/corpus/ with LDAP on the
# ports exflow's ldap tracker reads (tcp/389, 390, 379, 3268), what tshark decodes: the messages
# by operation (`ldap.protocolOp`) and the results by (operation, `ldap.resultCode`). A frame may
# carry several messages: its operations and result codes are lists, and the codes belong, in
# order, to the operations that carry an LDAPResult (bindResponse 1, searchResDone 5,
# modifyResponse 7, addResponse 9, delResponse 11, modDNResponse 13, compareResponse 15,
# extendedResp 24).
#
#   bash tests/data/tshark_ldap.sh > tests/data/tshark_ldap.tsv
#
# Generated with TShark (Wireshark) 4.0.17 (Debian 12 package tshark 4.0.17-0+deb12u3).
set -euo pipefail
cd "$(dirname "$0")"

printf 'file\toperations\tresults\n'
cut -f1 corpus/MANIFEST.tsv | tail -n +2 | while IFS= read -r f; do
  tshark -n -r "corpus/$f" -d tcp.port==390,ldap -d tcp.port==379,ldap \
      -Y 'ldap && (tcp.port == 389 || tcp.port == 390 || tcp.port == 379 || tcp.port == 3268)' \
      -T fields -E separator=/t -E occurrence=a -E aggregator=';' \
      -e ldap.protocolOp -e ldap.resultCode 2>/dev/null |
    awk -F'\t' -v file="$f" '
      {
        n = split($1, ops, ";"); m = split($2, codes, ";"); j = 1
        for (i = 1; i <= n; i++) {
          if (ops[i] == "") continue
          any = 1; op[ops[i]]++
          if (ops[i] ~ /^(1|5|7|9|11|13|15|24)$/ && j <= m) res[ops[i] "/" codes[j++]]++
        }
      }
      END {
        if (!any) exit
        os = ""; for (k in op) os = os (os == "" ? "" : ",") k ":" op[k]
        rs = ""; for (k in res) rs = rs (rs == "" ? "" : ",") k ":" res[k]
        printf "%s\t%s\t%s\n", file, os, rs
      }'
done
