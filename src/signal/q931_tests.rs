//! Q.931 walks over real H.225 messages from the corpus (TPKT header removed) and edge cases.

use super::*;
use crate::signal::test_util::hex;

/// rtp_example.raw.gz frame 4 (TPKT header removed): Setup from NetMeeting with Bearer
/// capability, Display and User-user.
pub(crate) const SETUP_FRAME4: &str =
    "080277f40504038090a528086d2e6a656d6563007e00850520a8060008914a\
    0004014006006d002e006a0065006d0065006322c00900003d1443616c6c67656e33323320706f67616373616d\
    00000a302e39616c706861340000000a01061206b800f8fdf93ecd9ed6119ab2000476222017005d0d8007000a\
    01038f80231100c0fef93ecd9ed6119ab2000476222017010001000100010002800100";

#[test]
fn setup_with_bearer_display_and_user_user() {
    let bytes = hex(SETUP_FRAME4);
    let m = parse(&bytes).unwrap();
    assert_eq!(m.message_type, msg::SETUP);
    assert_eq!(message_name(m.message_type), "Setup");
    assert_eq!((m.call_ref, m.call_ref_flag), (0x77f4, false));
    assert_eq!(m.uu_protocol, Some(UU_PROTOCOL_X208));
    let uu = m.user_user.unwrap();
    assert_eq!(uu.len(), 0x85 - 1);
    assert_eq!(uu[..3], [0x20, 0xa8, 0x06]);
    // Cut inside the User-user element: truncated, reported where the element's contents start.
    let cut = parse(&bytes[..40]).unwrap_err();
    assert_eq!(
        cut,
        Q931Error {
            kind: Q931ErrorKind::Truncated,
            offset: 23
        }
    );
}

#[test]
fn connect_sets_the_call_reference_flag() {
    // rtp_example.raw.gz frame 10, shortened User-user length to match the excerpt.
    let bytes = hex("0802f7f40728074d2e4a454d45437e00060522c0060008");
    let m = parse(&bytes).unwrap();
    assert_eq!(m.message_type, msg::CONNECT);
    assert_eq!((m.call_ref, m.call_ref_flag), (0x77f4, true));
    assert_eq!(m.uu_protocol, Some(0x05));
    assert_eq!(m.user_user, Some(&hex("22c0060008")[..]));
}

#[test]
fn facility_with_empty_facility_element() {
    // tel2.dump frame 310: Facility IE of length 0 (1c 00) before User-user.
    let bytes = hex("0802db48621c007e0003052680");
    let m = parse(&bytes).unwrap();
    assert_eq!(m.message_type, msg::FACILITY);
    assert_eq!(m.user_user, Some(&[0x26, 0x80][..]));
}

#[test]
fn single_octet_elements_and_shifts() {
    // Sending complete (a1), locking shift to codeset 6 (96): a later 7e is not User-user.
    let bytes = hex("08020001 05 a1 96 7e 02 0511");
    assert_eq!(parse(&bytes).unwrap().user_user, None);
    // Non-locking shift (9e) applies to the next element only.
    let bytes = hex("08020001 05 9e 7e01aa 7e0002 0511");
    let m = parse(&bytes).unwrap();
    assert_eq!(m.user_user, Some(&[0x11][..]));
}

#[test]
fn message_without_user_user_and_escaped_type() {
    let bytes = hex("0802000a5a 08 02 8090");
    let m = parse(&bytes).unwrap();
    assert_eq!(m.message_type, msg::RELEASE_COMPLETE);
    assert_eq!((m.uu_protocol, m.user_user), (None, None));
    // Message type 0 escapes to the next octet.
    let bytes = hex("0800 00 62");
    let m = parse(&bytes).unwrap();
    assert_eq!((m.call_ref, m.message_type), (0, msg::FACILITY));
}

#[test]
fn malformed_messages_are_errors_not_panics() {
    let e = |s: &str| parse(&hex(s)).unwrap_err();
    assert_eq!(
        e("09020001"),
        Q931Error {
            kind: Q931ErrorKind::NotQ931,
            offset: 0
        }
    );
    assert_eq!(e("").kind, Q931ErrorKind::Truncated);
    assert_eq!(e("08").kind, Q931ErrorKind::Truncated);
    assert_eq!(e("0802ff").kind, Q931ErrorKind::Truncated);
    assert_eq!(e("08020001").kind, Q931ErrorKind::Truncated);
    assert_eq!(e("0802000105 04 05 80").offset, 7);
    assert_eq!(e("0802000105 7e 00").kind, Q931ErrorKind::Truncated);
    assert_eq!(e("0802000105 7e 0003 05").kind, Q931ErrorKind::Truncated);
    assert_eq!(
        e("0802000105 7e 0000"),
        Q931Error {
            kind: Q931ErrorKind::EmptyUserUser,
            offset: 5
        }
    );
    assert_eq!(
        e("0802000105 7e 0000").to_string(),
        "Q.931 empty User-user element at byte 5"
    );
}
