//! Fuzzes the DCE/RPC parsers: PDU header, bind and bind_ack contexts, request/response bodies,
//! and the endpoint mapper's responses and towers in both byte orders.
#![no_main]

use exflow::signal::dcerpc::{self, Order};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dcerpc::parse_bind(data);
    let _ = dcerpc::parse_bind_ack(data);
    let _ = dcerpc::parse_request(data);
    if let Ok((h, stub)) = dcerpc::parse_response(data) {
        for opnum in [dcerpc::OPNUM_EPT_MAP, dcerpc::OPNUM_EPT_LOOKUP] {
            let _ = dcerpc::parse_epm_response(stub, opnum, h.order);
        }
    }
    for order in [Order::Little, Order::Big] {
        for opnum in [dcerpc::OPNUM_EPT_MAP, dcerpc::OPNUM_EPT_LOOKUP] {
            let _ = dcerpc::parse_epm_response(data, opnum, order);
        }
    }
    let _ = dcerpc::parse_tower(data);
});
