//! Byte-array tests of every PER primitive (values worked out by hand from X.691).

use super::*;

fn reader(bytes: &[u8]) -> PerReader<'_> {
    PerReader::new(bytes)
}

#[test]
fn bits_cross_octets_and_report_truncation_with_offset_and_field() {
    let mut r = reader(&[0b1010_1100, 0b0101_0000]);
    assert!(r.read_bit().unwrap());
    assert!(!r.read_bit().unwrap());
    assert_eq!(r.read_bits(9).unwrap(), 0b1_0110_0010);
    assert_eq!(r.bit_pos(), 11);
    assert_eq!(r.remaining_bits(), 5);
    let err = r.at("thing").read_bits(6).unwrap_err();
    assert_eq!(
        err,
        PerError {
            kind: PerErrorKind::Truncated,
            bit: 11,
            field: "thing"
        }
    );
    assert_eq!(err.to_string(), "PER truncated at bit 11 (in thing)");
    assert_eq!(
        reader(&[]).read_bit().unwrap_err().kind,
        PerErrorKind::Truncated
    );
    assert_eq!(
        reader(&[0; 8]).read_bits(33).unwrap_err().kind,
        PerErrorKind::Unsupported
    );
}

#[test]
fn align_moves_to_the_next_octet_only_when_needed() {
    let mut r = reader(&[0xff, 0x42]);
    r.align();
    assert_eq!(r.bit_pos(), 0);
    r.read_bit().unwrap();
    r.align();
    assert_eq!(r.bit_pos(), 8);
    assert_eq!(r.read_octets(1).unwrap(), &[0x42]);
    r.align();
    assert_eq!(r.bit_pos(), 16);
    assert_eq!(r.read_octets(1).unwrap_err().kind, PerErrorKind::Truncated);
    assert_eq!(
        r.read_octets(usize::MAX).unwrap_err().kind,
        PerErrorKind::Truncated
    );
}

#[test]
fn constrained_whole_numbers_use_the_aligned_variant_widths() {
    // Range 1: no bits at all.
    let mut r = reader(&[]);
    assert_eq!(r.constrained(7, 7).unwrap(), 7);
    // Range 7 (0..6): 3 bits, unaligned. 101 = 5, then 011 = 3 offset from 1.
    let mut r = reader(&[0b1010_1100]);
    assert_eq!(r.constrained(0, 6).unwrap(), 5);
    assert_eq!(r.constrained(1, 7).unwrap(), 4);
    // Range 255 (1..255): 8 bits, not aligned.
    let mut r = reader(&[0b1000_0000, 0b1000_0000]);
    r.read_bit().unwrap();
    assert_eq!(r.constrained(1, 255).unwrap(), 2);
    // Range 256: one aligned octet.
    let mut r = reader(&[0x80, 0x05]);
    r.read_bit().unwrap();
    assert_eq!(r.constrained(0, 255).unwrap(), 5);
    assert_eq!(r.bit_pos(), 16);
    // Range 65535 / 65536: two aligned octets (port 1720 = 0x06b8).
    let mut r = reader(&[0x06, 0xb8, 0x00, 0x64]);
    assert_eq!(r.constrained(0, 65535).unwrap(), 1720);
    assert_eq!(r.constrained(1, 65535).unwrap(), 101);
    // Range > 64K: a 2-bit octet count (1..4), aligned octets. BandWidth 0x1234.
    let mut r = reader(&[0b0100_0000, 0x12, 0x34]);
    assert_eq!(r.constrained(0, u32::MAX).unwrap(), 0x1234);
    // INTEGER (1..192400): 3 octets at most; a count of 4 is out of range.
    let mut r = reader(&[0b1100_0000, 1, 2, 3, 4]);
    assert_eq!(
        r.constrained(1, 192_400).unwrap_err().kind,
        PerErrorKind::OutOfRange
    );
    // A bit-field value past the upper bound.
    let mut r = reader(&[0b1100_0000]);
    assert_eq!(
        r.constrained(1, 3).unwrap_err().kind,
        PerErrorKind::OutOfRange
    );
    assert_eq!(
        reader(&[0]).constrained(5, 4).unwrap_err().kind,
        PerErrorKind::Unsupported
    );
}

#[test]
fn length_determinants_short_long_and_fragmented() {
    let mut r = reader(&[0x80, 0x05]);
    r.read_bit().unwrap();
    assert_eq!(r.length().unwrap(), 5);
    assert_eq!(reader(&[0x81, 0x02]).length().unwrap(), 258);
    assert_eq!(reader(&[0xbf, 0xff]).length().unwrap(), 16383);
    let frag = reader(&[0xc1]).length().unwrap_err();
    assert_eq!((frag.kind, frag.bit), (PerErrorKind::FragmentedLength, 8));
    assert_eq!(
        reader(&[0x81]).length().unwrap_err().kind,
        PerErrorKind::Truncated
    );
    // Constrained lengths: SIZE (1..128) in 7 bits, SIZE (1..256) in an aligned octet.
    assert_eq!(
        reader(&[0b0000_0110])
            .sized_length(Size::Range(1, 128))
            .unwrap(),
        4
    );
    assert_eq!(
        reader(&[0x03]).sized_length(Size::Range(1, 256)).unwrap(),
        4
    );
    assert_eq!(reader(&[]).sized_length(Size::Fixed(16)).unwrap(), 16);
    // An upper bound of 64K or more falls back to the general determinant, lower bound kept.
    assert_eq!(
        reader(&[0x02]).sized_length(Size::Range(1, 70000)).unwrap(),
        2
    );
    let short = reader(&[0x00]).sized_length(Size::Range(1, 70000));
    assert_eq!(short.unwrap_err().kind, PerErrorKind::OutOfRange);
}

#[test]
fn normally_small_numbers_and_choice_indices() {
    // 0 + 000101: 5.
    assert_eq!(reader(&[0b0000_1010]).normally_small().unwrap(), 5);
    // 1 + length 1 + one octet: 200.
    assert_eq!(reader(&[0x80, 0x01, 200]).normally_small().unwrap(), 200);
    assert_eq!(
        reader(&[0x80, 0x05]).normally_small().unwrap_err().kind,
        PerErrorKind::Unsupported
    );
    // Extensible CHOICE, 7 root alternatives: 0 + 011 -> Root(3).
    assert_eq!(
        reader(&[0b0011_0000]).choice(7, true).unwrap(),
        Choice::Root(3)
    );
    // Extension alternative 1: 1 + 0 + 000001.
    assert_eq!(
        reader(&[0b1000_0001]).choice(7, true).unwrap(),
        Choice::Ext(1)
    );
    // Non-extensible, one alternative: no bits.
    let mut r = reader(&[]);
    assert_eq!(r.choice(1, false).unwrap(), Choice::Root(0));
    assert_eq!(
        r.choice(0, false).unwrap_err().kind,
        PerErrorKind::OutOfRange
    );
}

#[test]
fn sequence_preamble_and_extension_bitmap() {
    // ext 1, optionals 101, then bitmap: 0 + 000010 (3 additions) + 011.
    let data = [0b1101_0000, 0b0100_1100];
    let mut r = reader(&data);
    let seq = r.sequence(true, 3).unwrap();
    assert!(seq.extended);
    assert!(seq.has(0) && !seq.has(1) && seq.has(2) && !seq.has(3));
    let ext = r.extensions().unwrap();
    assert_eq!(ext.count(), 3);
    assert!(!ext.has(0) && ext.has(1) && ext.has(2) && !ext.has(3));
    assert_eq!(r.bit_pos(), 14);
    assert_eq!(
        reader(&[0]).sequence(false, 65).unwrap_err().kind,
        PerErrorKind::Unsupported
    );
}

#[test]
fn extensions_are_skipped_as_open_types() {
    // ext bit 1, no optionals; bitmap of 2 (0 + 000001 + 11), then two open types.
    let data = [0b1000_0001, 0b1100_0000, 0x01, 0xaa, 0x02, 0xbb, 0xcc, 0x77];
    let mut r = reader(&data);
    let seq = r.sequence(true, 0).unwrap();
    r.finish_sequence(&seq).unwrap();
    assert_eq!(r.read_octets(1).unwrap(), &[0x77]);
    // An open type whose length overruns the input.
    assert_eq!(
        reader(&[0x05, 1, 2]).open_type().unwrap_err().kind,
        PerErrorKind::Truncated
    );
}

#[test]
fn octet_strings_fixed_ranged_and_unbounded() {
    let mut r = reader(&[0x80, 10, 1, 6, 18, 0x06, 0xb8]);
    r.read_bit().unwrap();
    assert_eq!(r.octet_string(Size::Fixed(4)).unwrap(), &[10, 1, 6, 18]);
    // SIZE (2): 16 bits, not aligned; cannot be a slice.
    let mut r = reader(&[0b1000_0000, 0x00, 0x80]);
    r.read_bit().unwrap();
    assert_eq!(
        r.octet_string(Size::Fixed(2)).unwrap_err().kind,
        PerErrorKind::Unsupported
    );
    r.skip_octet_string(Size::Fixed(2)).unwrap();
    assert_eq!(r.bit_pos(), 17);
    // SIZE (1..20) nsap: 5-bit length (value - 1), then aligned octets.
    let mut r = reader(&[0b0000_1000, 0xde, 0xad]);
    assert_eq!(r.octet_string(Size::Range(1, 20)).unwrap(), &[0xde, 0xad]);
    // Unbounded.
    assert_eq!(
        reader(&[0x02, 7, 8]).octet_string(Size::Unbounded).unwrap(),
        &[7, 8]
    );
    assert!(reader(&[0x00])
        .octet_string(Size::Unbounded)
        .unwrap()
        .is_empty());
}

#[test]
fn character_and_bit_strings_and_oids() {
    // dialledDigits "1234": 7-bit length 3, aligned, 4 bits per character.
    let mut r = reader(&[0b0000_0110, 0x12, 0x34, 0xff]);
    r.skip_char_string(Size::Range(1, 128), 4).unwrap();
    assert_eq!(r.bit_pos(), 24);
    // h323-ID (BMPString SIZE (1..256)) "m": aligned length octet 0, then 2 octets.
    let mut r = reader(&[0x00, 0x00, 0x6d]);
    r.skip_char_string(Size::Range(1, 256), 16).unwrap();
    assert_eq!(r.remaining_bits(), 0);
    // A fixed BIT STRING (SIZE (32)) is aligned; SIZE (3) is not.
    let mut r = reader(&[0x80, 1, 2, 3, 4]);
    r.read_bit().unwrap();
    r.skip_bit_string(Size::Fixed(32)).unwrap();
    assert_eq!(r.remaining_bits(), 0);
    let mut r = reader(&[0x00]);
    r.skip_bit_string(Size::Fixed(3)).unwrap();
    assert_eq!(r.bit_pos(), 3);
    // H.225 protocolIdentifier 0.0.8.2250.0.4.
    let oid = [0x06, 0x00, 0x08, 0x91, 0x4a, 0x00, 0x04];
    assert_eq!(reader(&oid).object_identifier().unwrap(), &oid[1..]);
    let mut r = reader(&[0x02, 0x01, 0x00, 0x55]);
    r.skip_unconstrained_integer().unwrap();
    assert_eq!(r.read_octets(1).unwrap(), &[0x55]);
}
