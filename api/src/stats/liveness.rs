//! Uptime and the liveness timeline from the alive slot ends found in ClickHouse
//! (`crate::queries::liveness`): which slot ends count, the percentage, and runs of one state.
//! Pure, so the arithmetic at the window's edges is unit-tested.

use dvmdash_core::dto::{
    HEARTBEAT_ALIVE_SECS, Liveness, LivenessSpan, ServiceLiveness, UPTIME_SLOT_SECS, rfc3339,
};
use dvmdash_core::event::Id32;

use crate::queries::entities::RoleActivity;

pub const DAY_SECS: u64 = 86_400;
pub const WEEK_SECS: u64 = 7 * DAY_SECS;

/// The slot ends `e` (multiples of the slot) with `now - window < e <= now` and `e >= first_seen`,
/// ascending.
pub fn slot_ends(now: u64, window: u64, first_seen: u64) -> impl Iterator<Item = u64> {
    let low = (now.saturating_sub(window) + 1).max(first_seen);
    let first = low.div_ceil(UPTIME_SLOT_SECS) * UPTIME_SLOT_SECS;
    (first..=now).step_by(UPTIME_SLOT_SECS as usize)
}

/// How many slot ends [`slot_ends`] gives.
pub fn counted_slots(now: u64, window: u64, first_seen: u64) -> u64 {
    let low = (now.saturating_sub(window) + 1).max(first_seen);
    let first = low.div_ceil(UPTIME_SLOT_SECS);
    let last = now / UPTIME_SLOT_SECS;
    (last + 1).saturating_sub(first)
}

/// `alive` of `counted` slot ends as a percentage; `None` when none counted.
pub fn percent(alive: u64, counted: u64) -> Option<f64> {
    (counted > 0).then(|| alive.min(counted) as f64 * 100.0 / counted as f64)
}

/// Runs of one state over the week's slot ends; `alive` are the alive ones, ascending.
pub fn timeline(now: u64, first_seen: u64, alive: &[u32]) -> Vec<LivenessSpan> {
    let mut spans: Vec<LivenessSpan> = Vec::new();
    let mut next_alive = alive.iter().map(|&e| u64::from(e)).peekable();
    for e in slot_ends(now, WEEK_SECS, first_seen) {
        while next_alive.next_if(|&a| a < e).is_some() {}
        let up = next_alive.next_if_eq(&e).is_some();
        match spans.last_mut() {
            Some(s) if s.alive == up => {
                s.to = rfc3339(e);
                s.slots += 1;
            }
            _ => spans.push(LivenessSpan {
                from: rfc3339(e),
                to: rfc3339(e),
                alive: up,
                slots: 1,
            }),
        }
    }
    spans
}

/// What the activity table says of one service: first event, newest heartbeat, newest answer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub first: Option<u64>,
    pub heartbeat: Option<u64>,
    pub answer: Option<u64>,
}

impl Seen {
    /// Takes in one activity row of the service.
    pub fn add(&mut self, a: &RoleActivity) {
        let newer = |slot: &mut Option<u64>, t: u32| {
            *slot = Some(slot.map_or(u64::from(t), |v| v.max(u64::from(t))));
        };
        let first = u64::from(a.first_seen);
        self.first = Some(self.first.map_or(first, |f| f.min(first)));
        match a.role.as_str() {
            "result" | "feedback" => newer(&mut self.answer, a.last_seen),
            "heartbeat" => newer(&mut self.heartbeat, a.last_seen),
            _ => {}
        }
    }

    pub fn of(pk: &Id32, activity: &[RoleActivity]) -> Seen {
        let mut s = Seen::default();
        activity.iter().filter(|a| &a.pubkey == pk).for_each(|a| s.add(a));
        s
    }
}

/// One service's liveness at `now`, or `None` when it was never seen.
pub fn service_liveness(
    now: u64,
    pk: &Id32,
    seen: Seen,
    alive_slots: &[u32],
    alive_window_secs: u64,
) -> Option<ServiceLiveness> {
    let first = seen.first?;
    let in_day = alive_slots
        .iter()
        .filter(|&&e| u64::from(e) + DAY_SECS > now)
        .count() as u64;
    Some(ServiceLiveness {
        id: hex::encode(pk),
        timestamp: rfc3339(now),
        status: Liveness::at(now, seen.heartbeat, seen.answer, alive_window_secs),
        last_heartbeat: seen.heartbeat.map(rfc3339),
        last_result: seen.answer.map(rfc3339),
        first_seen: Some(rfc3339(first)),
        alive_window_seconds: alive_window_secs,
        heartbeat_alive_seconds: HEARTBEAT_ALIVE_SECS,
        slot_seconds: UPTIME_SLOT_SECS,
        uptime_24h: percent(in_day, counted_slots(now, DAY_SECS, first)),
        uptime_7d: percent(alive_slots.len() as u64, counted_slots(now, WEEK_SECS, first)),
        timeline: timeline(now, first, alive_slots),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_ends_at_the_window_edges() {
        // now on a slot end: the window's first slot end is one slot after now - window.
        let now = 1_000_200; // 3334 * 300
        assert_eq!(counted_slots(now, DAY_SECS, 0), 288);
        assert_eq!(slot_ends(now, DAY_SECS, 0).count(), 288);
        assert_eq!(slot_ends(now, DAY_SECS, 0).last(), Some(now));
        // now between slot ends.
        assert_eq!(counted_slots(now + 299, DAY_SECS, 0), 288);
        assert_eq!(counted_slots(now + 1, DAY_SECS, 0), 288);
        // A service first seen within the window counts from there; exactly on a slot end counts it.
        assert_eq!(counted_slots(now, DAY_SECS, now - 600), 3);
        assert_eq!(counted_slots(now, DAY_SECS, now - 599), 2);
        assert_eq!(counted_slots(now, DAY_SECS, now + 10), 0);
        for first in [0, now - 3000, now - 2999, now - 1, now] {
            for n in [now, now + 1, now + 299] {
                assert_eq!(
                    counted_slots(n, DAY_SECS, first),
                    slot_ends(n, DAY_SECS, first).count() as u64,
                    "now {n}, first {first}"
                );
            }
        }
    }

    #[test]
    fn percent_and_timeline() {
        assert_eq!(percent(0, 0), None);
        assert_eq!(percent(3, 4), Some(75.0));
        assert_eq!(percent(9, 4), Some(100.0), "never above 100");
        let now = 1_000_200u64;
        let first = now - 1500; // slot ends now-1500 .. now: 6 of them
        let alive = [(now - 1200) as u32, (now - 900) as u32, now as u32];
        let t = timeline(now, first, &alive);
        let states: Vec<(bool, u64)> = t.iter().map(|s| (s.alive, s.slots)).collect();
        assert_eq!(states, vec![(false, 1), (true, 2), (false, 2), (true, 1)]);
        assert_eq!(t[1].from, rfc3339(now - 1200));
        assert_eq!(t[1].to, rfc3339(now - 900));
        assert!(timeline(now, now + 1, &alive).is_empty());
    }
}
