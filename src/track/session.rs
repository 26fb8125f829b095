//! Media inference between two hosts: while an audio (1731) or undecodable H.323 session between
//! hosts A and B lives (plus a grace period), a new UDP flow between A and B with both ports above
//! 1023 whose first datagram is plausible RTP is that session's media.

use std::collections::HashMap;
use std::net::IpAddr;

use ahash::RandomState;

use super::FlowInfo;
use crate::classify::{Flow, ServiceId};
use crate::packet::{Nanos, Packet, Proto};

/// A live session that infers media between two hosts.
#[derive(Clone, Copy, Debug)]
struct Session {
    until: Nanos,
    expectation: u32,
    media: ServiceId,
}

/// Live inference sessions by unordered host pair.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    map: HashMap<(IpAddr, IpAddr), Session, RandomState>,
}

fn host_pair(a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Plausible first datagram of an RTP or RTCP stream: version 2 and a payload type RTP uses
/// (0–34 static, 96–127 dynamic) or an RTCP packet type (200–204).
pub fn plausible_rtp(payload: &[u8]) -> bool {
    if payload.len() < 8 || payload[0] >> 6 != 2 {
        return false;
    }
    let pt = payload[1] & 0x7f;
    (200..=204).contains(&payload[1]) || (payload.len() >= 12 && (pt <= 34 || pt >= 96))
}

impl Sessions {
    /// Extends the session of the flow's hosts, if there is one.
    pub fn refresh(&mut self, flow: FlowInfo, ts: Nanos, grace: Nanos) -> bool {
        match self.map.get_mut(&host_pair(flow.client.ip, flow.server.ip)) {
            Some(s) => {
                s.until = s.until.max(ts.saturating_add(grace));
                true
            }
            None => false,
        }
    }

    pub fn open(&mut self, flow: FlowInfo, until: Nanos, expectation: u32, media: ServiceId) {
        self.map.insert(
            host_pair(flow.client.ip, flow.server.ip),
            Session {
                until,
                expectation,
                media,
            },
        );
    }

    /// The media service and expectation a new UDP flow takes from a live session.
    pub fn media_for(&self, flow: &Flow, p: &Packet<'_>) -> Option<(ServiceId, u32)> {
        if flow.proto != Proto::Udp || flow.client.port < 1024 || flow.server.port < 1024 {
            return None;
        }
        let s = self.map.get(&host_pair(flow.client.ip, flow.server.ip))?;
        (p.ts <= s.until && plausible_rtp(p.payload)).then_some((s.media, s.expectation))
    }

    /// Drops sessions that ended before `now`.
    pub fn expire(&mut self, now: Nanos) {
        self.map.retain(|_, s| now <= s.until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_plausibility() {
        let mut rtp = [0u8; 172];
        rtp[0] = 0x80;
        assert!(plausible_rtp(&rtp), "PCMU");
        rtp[1] = 0x80 | 97;
        assert!(plausible_rtp(&rtp), "dynamic with marker");
        rtp[1] = 72;
        assert!(!plausible_rtp(&rtp), "72 is no RTP payload type");
        assert!(
            plausible_rtp(&[0x81, 200, 0, 6, 0, 0, 0, 1]),
            "RTCP sender report"
        );
        assert!(!plausible_rtp(b"\x00\x01 NetBIOS-ish"), "version 0");
        assert!(!plausible_rtp(&[0x80, 0]), "too short");
    }
}
