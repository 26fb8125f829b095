//! Fuzzes the whole pipeline: bytes as a capture file (any format, gzip included) through the
//! analyzer with a small flow table, to a report rendered as JSON, table and CSV.
#![no_main]

use exflow::analyze::{Analyzer, Config};
use exflow::flow::FlowConfig;
use exflow::output::{self, Report, TableOptions};
use exflow::source::{CaptureReader, ReadLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = ReadLimits {
        window: 1 << 20,
        interfaces_per_section: 64,
        ..ReadLimits::default()
    };
    let input = Box::new(std::io::Cursor::new(data.to_vec()));
    let Ok(mut r) = CaptureReader::from_reader_with("fuzz", input, limits) else {
        return;
    };
    let config = Config {
        flow: FlowConfig {
            max_flows: 64,
            ..FlowConfig::default()
        },
        keep_flows: true,
        max_flow_records: 64,
        ..Config::default()
    };
    let mut a = Analyzer::new(config);
    a.begin_file("fuzz");
    for _ in 0..=data.len() {
        match r.next_packet() {
            Ok(Some(p)) => {
                a.packet(&p);
            }
            Ok(None) => break,
            Err(e) => {
                a.file_error(e.to_string());
                break;
            }
        }
    }
    let analysis = a.finish();
    let report = Report::new(&analysis);
    for s in &report.services {
        assert!(s.duration_s.max >= 0.0 && s.handshake_rtt_ms.max >= 0.0);
    }
    let mut sink = Vec::new();
    serde_json::to_writer(&mut sink, &report).expect("JSON renders");
    output::write_table(&mut sink, &report, TableOptions::default()).expect("table renders");
    if let Some(flows) = &report.flows {
        output::write_flows_csv(&mut sink, flows).expect("CSV renders");
    }
});
