//! Shared by the capture-reader fuzz targets: reads every packet of `bytes` prefixed with a
//! format's magic, with small budgets so a hostile header cannot make one run slow.

use exflow::source::{CaptureReader, ReadLimits};

pub fn read_with_magic(magic: &[u8], bytes: &[u8]) {
    let mut file = magic.to_vec();
    file.extend_from_slice(bytes);
    let limit = file.len() + 1;
    let limits = ReadLimits {
        window: 1 << 20,
        interfaces_per_section: 64,
        ..ReadLimits::default()
    };
    let Ok(mut r) =
        CaptureReader::from_reader_with("fuzz", Box::new(std::io::Cursor::new(file)), limits)
    else {
        return;
    };
    for _ in 0..=limit {
        match r.next_packet() {
            Ok(Some(p)) => assert!(p.data.len() as u64 <= u64::from(p.wire_len)),
            Ok(None) | Err(_) => {
                assert!(matches!(r.next_packet(), Ok(None)));
                let _ = r.warnings();
                return;
            }
        }
    }
    panic!("the reader yielded more packets than the input has bytes");
}
