//! The tracker kinds of exflow, in the order they run on a flow. Adding a protocol adds one line
//! here (and `track` lines in the catalogue).

use super::{dns, epm, h323, ldap, mail_login, rvp, smtp, x400, Limits, TrackerKind};
use crate::classify::Catalogue;

pub(super) fn kinds(c: &Catalogue, limits: Limits) -> Vec<Box<dyn TrackerKind>> {
    vec![
        Box::new(h323::H225Kind::new(c)),
        Box::new(h323::H245Kind::new(c)),
        Box::new(h323::RasKindTracker::new(c)),
        Box::new(h323::AudioKind::new(c)),
        Box::new(rvp::RvpKind::new(c)),
        Box::new(epm::EpmKind::new(c)),
        Box::new(epm::RpcKind::new(c)),
        Box::new(smtp::SmtpKind(limits)),
        Box::new(dns::DnsKind::new(c, limits)),
        Box::new(ldap::LdapKind(limits)),
        Box::new(mail_login::Pop3Kind),
        Box::new(mail_login::ImapKind),
        Box::new(x400::X400Kind),
    ]
}
