//! exflow: passive classification of Microsoft Exchange 2000 network traffic.
//!
//! The modules are the pipeline, in order: [`source`] → [`decode`] → [`flow`] → [`classify`]
//! (catalogue, payload detectors, expectations fed by [`signal`] parsers) → [`summary`] →
//! [`output`]. Data flows one way.
#![deny(unsafe_code)]

pub mod analyze;
mod bytes;
pub mod classify;
pub mod decode;
pub mod flow;
pub mod interval;
#[cfg(feature = "live")]
pub mod live;
pub mod output;
pub mod packet;
pub mod signal;
pub mod source;
pub mod summary;
#[cfg(any(test, feature = "synth"))]
pub mod synth;
pub mod track;
