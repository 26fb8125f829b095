//! exflow: passive classification of Microsoft Exchange 2000 network traffic.
//!
//! The modules are the pipeline, in order: `source` → `decode` → [`flow`] → [`classify`]
//! (catalogue, expectations) → [`track`] (one tracker per protocol that reads payload, fed by a
//! bounded reassembler; pure parsers in `signal`) → [`summary`] → [`output`]. Data flows one way.
//!
//! The crate's API is what a program embedding exflow needs: [`source::CaptureReader`] to read
//! captures, [`analyze::Analyzer`] and [`analyze::Config`] (or [`analyze::analyze_files`]) to run
//! the pipeline, [`classify::Catalogue`], the report types of [`output`], and the [`track`] traits
//! to add a protocol. `decode`, `signal` and `interval` are public only so that fuzz targets
//! and integration tests reach them; they are not part of the API. `synth` (capture builders)
//! exists with the `synth` feature.
#![deny(unsafe_code)]

pub mod analyze;
mod bytes;
pub mod classify;
#[doc(hidden)]
pub mod decode;
pub mod firewall;
pub mod flow;
#[doc(hidden)]
pub mod interval;
#[cfg(feature = "live")]
pub mod live;
mod mem;
pub mod nonmax;
pub mod output;
pub mod packet;
pub mod shard;
#[doc(hidden)]
pub mod signal;
pub mod source;
pub mod summary;
#[cfg(any(test, feature = "synth"))]
pub mod synth;
pub mod track;
