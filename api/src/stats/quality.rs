//! `GET /api/stats/deviations`: every known deviation with its count, in the catalogue's order.

use dvmdash_core::dto::{DeviationCount, Deviations};
use dvmdash_core::nip90::deviation;

use crate::queries::Window;
use crate::queries::quality::FlagCount;

pub fn deviations(w: &Window, events: u64, flags: &[FlagCount], deletions_of_others: u64) -> Deviations {
    let (timestamp, period_start, period_end) = super::period(w);
    Deviations {
        timestamp,
        period_start,
        period_end,
        events,
        deviations: deviation::ALL
            .iter()
            .map(|&(flag, name, description)| {
                let found = flags
                    .iter()
                    .find(|f| 1u32.checked_shl(u32::from(f.bit)) == Some(flag));
                DeviationCount {
                    name: name.to_owned(),
                    description: description.to_owned(),
                    events: found.map_or(0, |f| f.events),
                    authors: found.map_or(0, |f| f.authors),
                }
            })
            .collect(),
        deletions_of_others,
    }
}
