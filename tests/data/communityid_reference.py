#!/usr/bin/env python3
"""Community ID v1 by an independent implementation, the `communityid` Python package
(corelight's, `pip install communityid`), for tests/events.rs.

Reads tab-separated tuples on stdin: seed, IP protocol number, source address, destination
address, source port, destination port (for ICMP/ICMPv6: type and code), and prints one
Community ID per line, in order.
"""
import sys

import communityid

hashers = {}
for line in sys.stdin:
    seed, proto, saddr, daddr, sport, dport = line.rstrip("\n").split("\t")
    seed, proto, sport, dport = int(seed), int(proto), int(sport), int(dport)
    if seed not in hashers:
        hashers[seed] = communityid.CommunityID(seed=seed)
    if proto == communityid.PROTO_ICMP:
        t = communityid.FlowTuple.make_icmp(saddr, daddr, sport, dport)
    elif proto == communityid.PROTO_ICMP6:
        t = communityid.FlowTuple.make_icmp6(saddr, daddr, sport, dport)
    elif proto in communityid.PORT_PROTOS:
        t = communityid.FlowTuple(proto, saddr, daddr, sport, dport)
    else:
        t = communityid.FlowTuple(proto, saddr, daddr)
    print(hashers[seed].calc(t))
