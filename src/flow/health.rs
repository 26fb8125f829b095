//! TCP health of one flow: retransmitted and out-of-order segments, duplicate ACKs, zero-window
//! advertisements, a reset in the middle of an established session, and the longest silence.
//!
//! A few numbers per direction (the next sequence number expected, the last acknowledgement and
//! window sent) are enough; nothing is allocated. Sequence numbers compare with wrapping
//! arithmetic, times saturate. The length of a segment is what the capture holds of it, so a
//! snap length that cuts segments only makes later ones look like a jump ahead (never counted),
//! not like retransmissions.

use crate::packet::{tcp_flags, Nanos, Packet};

/// A silence at least this long while data was sent and not yet acknowledged, ended by that data
/// sent again or by a RST, is a stall. (Ended by new data, it is more likely a capture that
/// missed the acknowledgements.)
pub const STALL_AFTER: Nanos = 10 * 1_000_000_000;

/// A segment below the next expected sequence number that comes sooner than the handshake's
/// round trip (this, when unknown) after the highest one is taken as reordered on the way, not as
/// sent again: Wireshark's rule, so its counts are the reference.
const REORDER_WITHIN: Nanos = 3_000_000;

/// Which side of the flow did something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// What one direction last sent (16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct DirSeq {
    /// Sequence number after the highest byte seen (valid once `seq_seen`).
    next: u32,
    /// When `next` last moved: microseconds since the flow's first packet (saturating).
    next_at: u32,
    /// Last acknowledgement number and window sent (valid once `ack_seen`).
    ack: u32,
    window: u16,
    seq_seen: bool,
    ack_seen: bool,
}

/// The health counters of one TCP flow (56 bytes: it lives in every flow of the table).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpHealth {
    /// Index 0: client to server; 1: server to client.
    dirs: [DirSeq; 2],
    pub retransmitted: u32,
    pub out_of_order: u32,
    pub dup_acks: u32,
    pub zero_windows: u32,
    /// The first RST after the session was established and before either side's FIN.
    pub reset_mid_session: Option<Side>,
    /// Longest time between two packets of the flow, in milliseconds (saturating).
    silence_ms: u32,
    /// A silence of [`STALL_AFTER`] or more while data was unacknowledged, ended by a
    /// retransmission or a RST.
    pub stalled: bool,
}

/// `a` comes before `b` in sequence space.
#[inline]
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl TcpHealth {
    /// Longest time between two packets of the flow (millisecond resolution).
    pub fn longest_silence(&self) -> Nanos {
        Nanos::from(self.silence_ms) * 1_000_000
    }

    /// Something a user should look at: retransmissions, reordering, duplicate ACKs, a zero
    /// window, a mid-session reset or a stall.
    pub fn troubled(&self) -> bool {
        self.retransmitted > 0
            || self.out_of_order > 0
            || self.dup_acks > 0
            || self.zero_windows > 0
            || self.broken()
    }

    /// The session was reset mid-way or stalled (listed with the failed connections).
    pub fn broken(&self) -> bool {
        self.reset_mid_session.is_some() || self.stalled
    }

    /// The first SYN came from the side taken for the server: the roles swap.
    pub(super) fn swap(&mut self) {
        self.dirs.swap(0, 1);
        self.reset_mid_session = self.reset_mid_session.map(|s| match s {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        });
    }

    /// Data one side sent that the other has not acknowledged (as far as the capture shows).
    fn unacked(&self) -> bool {
        let [c, s] = self.dirs;
        (c.seq_seen && s.ack_seen && seq_lt(s.ack, c.next))
            || (s.seq_seen && c.ack_seen && seq_lt(c.ack, s.next))
    }

    /// Takes one TCP packet. `since_last` is the time since the flow's previous packet,
    /// `since_first` since its first, `established` whether the session was up before this
    /// packet, `fin_seen` whether either side had sent a FIN before it, `rtt` the handshake's
    /// round trip if known.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn packet(
        &mut self,
        p: &Packet<'_>,
        side: Side,
        since_last: Nanos,
        since_first: Nanos,
        established: bool,
        fin_seen: bool,
        rtt: Option<Nanos>,
    ) {
        let silence_ms = u32::try_from(since_last / 1_000_000).unwrap_or(u32::MAX);
        self.silence_ms = self.silence_ms.max(silence_ms);
        // Past 71 minutes the clock saturates: reordering is then never assumed.
        let now_us = u32::try_from(since_first / 1000).ok();
        let stalling = since_last >= STALL_AFTER && self.unacked();
        let flags = p.tcp_flags;
        let control = flags & (tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST);
        if flags & tcp_flags::RST != 0 {
            self.stalled |= stalling && established;
            if established && !fin_seen && self.reset_mid_session.is_none() {
                self.reset_mid_session = Some(side);
            }
            return;
        }
        if control == 0 && p.window == 0 {
            self.zero_windows += 1;
        }
        let len = u32::try_from(p.payload.len()).unwrap_or(u32::MAX);
        let me = match side {
            Side::Client => 0,
            Side::Server => 1,
        };
        let d = &mut self.dirs[me];
        if flags & tcp_flags::ACK != 0 {
            // Wireshark's duplicate ACK: nothing new at all (same ack, window, next sequence).
            let dup = d.ack_seen
                && d.seq_seen
                && len == 0
                && control == 0
                && p.window != 0
                && p.ack == d.ack
                && p.window == d.window
                && p.seq == d.next;
            self.dup_acks += u32::from(dup);
            d.ack = p.ack;
            d.window = p.window;
            d.ack_seen = true;
        }
        let syn = flags & tcp_flags::SYN != 0;
        if !syn && flags & tcp_flags::ACK == 0 {
            // Every segment after the SYN carries an ACK; without one it is not a real
            // sender's sequence space (crafted or garbled captures).
            return;
        }
        let consumed = len
            .saturating_add(u32::from(syn))
            .saturating_add(u32::from(flags & tcp_flags::FIN != 0));
        if consumed == 0 {
            return;
        }
        let end = p.seq.wrapping_add(consumed);
        if !d.seq_seen || syn {
            d.next = end;
            d.next_at = now_us.unwrap_or(u32::MAX);
            d.seq_seen = true;
            return;
        }
        // A keep-alive re-sends the byte before the next one, on purpose.
        let keep_alive = len <= 1 && p.seq == d.next.wrapping_sub(1);
        if seq_lt(p.seq, d.next) && !keep_alive {
            let since_highest = now_us
                .filter(|_| d.next_at != u32::MAX)
                .map_or(Nanos::MAX, |us| {
                    Nanos::from(us.saturating_sub(d.next_at)) * 1000
                });
            if since_highest < rtt.unwrap_or(REORDER_WITHIN) && end != d.next {
                self.out_of_order += 1;
            } else {
                self.retransmitted += 1;
                self.stalled |= stalling;
            }
        }
        if seq_lt(d.next, end) {
            d.next = end;
            d.next_at = now_us.unwrap_or(u32::MAX);
        }
    }
}
