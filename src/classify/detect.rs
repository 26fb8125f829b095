//! Payload detectors: small implementations of one trait that refine a flow's service from its
//! first client payloads. Tried in the order the classifier lists them; the first that applies to
//! the flow's current service decides.

use super::{Catalogue, ServiceId};
use crate::signal::rvp;

/// Refines flows of one service by looking at client payload.
pub trait Detector: Send {
    /// Whether flows currently classified as `service` are inspected.
    fn applies_to(&self, service: ServiceId) -> bool;
    /// The service the payload proves, or `None` to keep looking.
    fn inspect(&self, payload: &[u8]) -> Option<ServiceId>;
}

/// RVP shares tcp/80 with HTTP; its requests carry RVP's own headers.
pub struct RvpDetector {
    http: ServiceId,
    rvp: ServiceId,
}

impl RvpDetector {
    pub fn new(catalogue: &Catalogue) -> RvpDetector {
        RvpDetector {
            http: catalogue.must("http"),
            rvp: catalogue.must("rvp"),
        }
    }
}

impl Detector for RvpDetector {
    fn applies_to(&self, service: ServiceId) -> bool {
        service == self.http
    }

    fn inspect(&self, payload: &[u8]) -> Option<ServiceId> {
        rvp::looks_like_rvp(payload).then_some(self.rvp)
    }
}
