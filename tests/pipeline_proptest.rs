//! Arbitrary bytes as captures and as packets never panic the pipeline, and whatever is read is
//! accounted for in the totals.

use exflow::analyze::{Analyzer, Config};
use exflow::output::Report;
use exflow::packet::RawPacket;
use exflow::source::CaptureReader;
use proptest::prelude::*;

const LINK_TYPES: [u32; 10] = [0, 1, 12, 101, 108, 113, 228, 229, 276, 147];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_frames_never_panic(frames in prop::collection::vec(
        (prop::sample::select(&LINK_TYPES[..]), prop::collection::vec(any::<u8>(), 0..200), 0i64..5_000_000_000),
        1..40,
    )) {
        let mut a = Analyzer::new(Config { keep_flows: true, ..Config::default() });
        a.begin_file("prop");
        let mut ts = 0;
        for (link_type, data, dt) in &frames {
            ts += dt;
            a.packet(&RawPacket { ts, link_type: *link_type, data, wire_len: data.len() as u32 });
        }
        let report = Report::new(&a.finish());
        prop_assert_eq!(report.input.packets, frames.len() as u64);
        let in_flows: u64 = report.services.iter().map(|s| s.packets).sum();
        let skipped: u64 = report.input.skipped.values().sum();
        prop_assert_eq!(report.input.packets, in_flows + skipped + report.input.icmp_unreachable);
        serde_json::to_string(&report).unwrap();
    }

    #[test]
    fn arbitrary_capture_bytes_never_panic(prefix in prop::sample::select(vec![
        vec![],
        vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0],
        vec![0x0a, 0x0d, 0x0d, 0x0a],
        vec![0x1f, 0x8b],
    ]), tail in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = prefix.clone();
        bytes.extend_from_slice(&tail);
        let Ok(mut r) = CaptureReader::from_reader("prop", Box::new(std::io::Cursor::new(bytes))) else {
            return Ok(());
        };
        let mut a = Analyzer::new(Config::default());
        a.begin_file("prop");
        while let Ok(Some(p)) = r.next_packet() {
            a.packet(&p);
        }
        let _ = Report::new(&a.finish());
    }
}
