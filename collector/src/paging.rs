//! Reading a time range of stored events from one relay completely, whatever the relay's reading of
//! NIP-01. Relays cap how many events one REQ returns (most at 500, some lower than the `limit`
//! asked), return the newest first, and disagree on whether `until` is inclusive. Paging backwards
//! with `until` = the oldest second of the previous page works only if that second is read again
//! (the cap can cut it in the middle) and the relay includes it; and a second holding more events
//! than one page can never be finished by moving `until` at all.
//!
//! [`Paging`] is the pure state machine of one pass over `[since, until]`: it says which REQ to send
//! next ([`Paging::request`]), is told the `created_at` of each event of that REQ
//! ([`Paging::on_event`]) and its end ([`Paging::on_end`]). It
//! - re-reads the oldest second of every page, so a page cut in the middle of a second loses nothing;
//! - learns whether the relay's `until` is exclusive from the first page boundary: the second at the
//!   boundary is known to hold events, so a relay that returns none of them when asked with
//!   `until` = that second excludes it, and the page is asked again with `until` + 1;
//! - learns the relay's cap from a page that came back smaller than asked while older events remained;
//! - reads a second that fills a whole page ("saturated") again kind by kind, halving the kind list
//!   until each part fits in a page. A page of one second proves nothing about the cap (no older
//!   event came back beside it), so one of at least 100 events (or the learned cap) counts as
//!   possibly cut. A single kind with that many events in one second cannot be read completely
//!   with time filters at all; it is counted as unresolved.

use std::ops::Range;

/// The smallest cap a relay is assumed to have: a page of one second this large may have been cut.
const MIN_PLAUSIBLE_CAP: u32 = 100;

/// How a relay reads a filter's `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UntilReading {
    #[default]
    Unknown,
    /// `created_at <= until`, as NIP-01 says.
    Inclusive,
    /// `created_at < until`.
    Exclusive,
}

impl UntilReading {
    pub fn as_str(self) -> &'static str {
        match self {
            UntilReading::Unknown => "unknown",
            UntilReading::Inclusive => "inclusive",
            UntilReading::Exclusive => "exclusive",
        }
    }
}

/// What a relay was learned to do, kept across the passes of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayReading {
    pub until: UntilReading,
    /// The most events one REQ returns (starts at the `limit` asked).
    pub cap: u32,
}

/// One REQ: `since` and `until` exactly as sent, and the part of the pass's kind list it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub since: u64,
    pub until: u64,
    pub kinds: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Job {
    /// Backwards through `[since, cursor]` with every kind.
    Main,
    /// One saturated second, for part of the kind list.
    Second { at: u64, kinds: Range<usize> },
}

/// The events of the REQ in flight.
#[derive(Debug, Clone, Copy)]
struct Page {
    count: u32,
    oldest: u64,
    newest: u64,
    /// Whether an event of the probed second came back (see [`Paging::probing`]).
    saw_probe: bool,
}

impl Page {
    const EMPTY: Page = Page {
        count: 0,
        oldest: u64::MAX,
        newest: 0,
        saw_probe: false,
    };
}

/// One pass over `[since, until]`.
#[derive(Debug, Clone)]
pub struct Paging {
    since: u64,
    /// Every second newer than this is read completely.
    cursor: u64,
    main_done: bool,
    kinds: usize,
    reading: RelayReading,
    job: Job,
    /// Saturated seconds (or parts of their kind list) still to read.
    pending: Vec<(u64, Range<usize>)>,
    page: Page,
    /// The REQ in flight asks `until` = `cursor` to learn whether the relay includes it: the cursor
    /// second is known to hold events.
    probing: bool,
    /// The previous main page came back smaller than the cap with this many events, ending at this
    /// second: if older events follow, the relay's cap is that small.
    short_page: Option<(u32, u64)>,
    /// REQs sent so far in this pass.
    pub requests: u32,
    /// Saturated seconds read kind by kind.
    pub split_seconds: u32,
    /// Seconds in which one kind alone filled a page: some of their events may be missing.
    pub unresolved_seconds: u32,
}

impl Paging {
    /// A pass over `[since, until]` (inclusive) of a kind list of `kinds` entries.
    pub fn new(since: u64, until: u64, kinds: usize, reading: RelayReading) -> Self {
        Paging {
            since,
            // One second past the end, so the end is read whichever way the relay reads `until`.
            cursor: until.saturating_add(1),
            main_done: kinds == 0 || since > until.saturating_add(1),
            kinds,
            reading,
            job: Job::Main,
            pending: Vec::new(),
            page: Page::EMPTY,
            probing: false,
            short_page: None,
            requests: 0,
            split_seconds: 0,
            unresolved_seconds: 0,
        }
    }

    /// What was learned about the relay, for the next pass.
    pub fn reading(&self) -> RelayReading {
        self.reading
    }

    /// The pass's lower bound (unix s).
    pub fn since(&self) -> u64 {
        self.since
    }

    /// Every second newer than this is read completely.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    pub fn is_done(&self) -> bool {
        self.main_done && self.pending.is_empty() && self.job == Job::Main
    }

    /// `until` to send for reading up to and including second `s`.
    fn until_for(&self, s: u64) -> u64 {
        match self.reading.until {
            UntilReading::Exclusive => s.saturating_add(1),
            _ => s,
        }
    }

    /// The REQ to send now, or `None` when the pass is complete.
    pub fn request(&self) -> Option<PageRequest> {
        match &self.job {
            Job::Second { at, kinds } => Some(PageRequest {
                since: *at,
                until: self.until_for(*at),
                kinds: kinds.clone(),
            }),
            Job::Main if self.main_done => None,
            Job::Main => Some(PageRequest {
                since: self.since,
                until: self.until_for(self.cursor),
                kinds: 0..self.kinds,
            }),
        }
    }

    /// A valid event of the REQ in flight. Events outside what was asked do not move the paging.
    pub fn on_event(&mut self, created_at: u64) {
        let (low, high) = match &self.job {
            Job::Main => (self.since, self.cursor),
            Job::Second { at, .. } => (*at, *at),
        };
        if !(low..=high).contains(&created_at) {
            return;
        }
        let p = &mut self.page;
        p.count += 1;
        p.oldest = p.oldest.min(created_at);
        p.newest = p.newest.max(created_at);
        p.saw_probe |= self.probing && created_at == self.cursor;
    }

    /// The relay ended the REQ in flight (EOSE, or CLOSED). Returns whether another REQ follows.
    pub fn on_end(&mut self) -> bool {
        self.requests += 1;
        let page = std::mem::replace(&mut self.page, Page::EMPTY);
        match self.job.clone() {
            Job::Main => self.end_main(page),
            Job::Second { at, kinds } => self.end_second(page, at, kinds),
        }
        if self.job == Job::Main
            && let Some((at, kinds)) = self.pending.pop()
        {
            self.job = Job::Second { at, kinds };
        }
        !self.is_done()
    }

    fn end_main(&mut self, page: Page) {
        if std::mem::take(&mut self.probing) {
            if !page.saw_probe {
                // The cursor second holds events, yet none came back: `until` is exclusive here.
                // Ask the same page again the exclusive way.
                self.reading.until = UntilReading::Exclusive;
                return;
            }
            self.reading.until = UntilReading::Inclusive;
        }
        let short = self.short_page.take();
        if page.count == 0 {
            self.main_done = true;
            return;
        }
        if let Some((n, boundary)) = short
            && page.oldest < boundary
        {
            // The relay stopped at `n` events although older ones existed: that is its cap.
            self.reading.cap = self.reading.cap.min(n);
        }
        if page.count < self.reading.cap {
            self.short_page = Some((page.count, page.oldest));
        }
        if page.oldest < self.cursor {
            // The cap may have cut the oldest second: read it again with the next page.
            self.cursor = page.oldest;
            self.probing = self.reading.until == UntilReading::Unknown;
            return;
        }
        // Every event of the page is in the cursor second, so the relay included it.
        if self.reading.until == UntilReading::Unknown {
            self.reading.until = UntilReading::Inclusive;
        }
        if self.may_be_cut(page.count) {
            self.split(self.cursor, 0..self.kinds);
        }
        match self.cursor.checked_sub(1) {
            Some(c) if c >= self.since => self.cursor = c,
            _ => self.main_done = true,
        }
    }

    /// Whether a page holding only one second may have been cut by the relay's cap. Only older
    /// events returned beside a short page prove a cap, and a page of one second has none; so a
    /// page a relay could plausibly be capped at counts as cut.
    fn may_be_cut(&self, count: u32) -> bool {
        count >= self.reading.cap.min(MIN_PLAUSIBLE_CAP)
    }

    fn end_second(&mut self, page: Page, at: u64, kinds: Range<usize>) {
        self.job = Job::Main;
        if !self.may_be_cut(page.count) {
            return;
        }
        if kinds.len() > 1 {
            self.split(at, kinds);
        } else {
            self.unresolved_seconds += 1;
        }
    }

    /// Queues second `at` to be read again in two halves of `kinds`.
    fn split(&mut self, at: u64, kinds: Range<usize>) {
        if kinds.len() < 2 {
            self.unresolved_seconds += 1;
            return;
        }
        if kinds.len() == self.kinds {
            self.split_seconds += 1;
        }
        let mid = kinds.start + kinds.len() / 2;
        self.pending.push((at, mid..kinds.end));
        self.pending.push((at, kinds.start..mid));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// A relay as NIP-01 leaves room for: newest first, at most `cap` per REQ, `until` read either
    /// way. Events are (created_at, kind index, serial).
    struct ModelRelay {
        events: Vec<(u64, usize, u32)>,
        cap: usize,
        exclusive: bool,
    }

    impl ModelRelay {
        fn answer(&self, r: &PageRequest, limit: u32) -> Vec<(u64, usize, u32)> {
            let mut hits: Vec<_> = self
                .events
                .iter()
                .copied()
                .filter(|&(t, k, _)| {
                    t >= r.since
                        && (if self.exclusive { t < r.until } else { t <= r.until })
                        && r.kinds.contains(&k)
                })
                .collect();
            hits.sort_by(|a, b| b.cmp(a));
            hits.truncate(self.cap.min(limit as usize));
            hits
        }
    }

    /// Runs one pass to the end; returns what was collected and the paging.
    fn run(relay: &ModelRelay, since: u64, until: u64, kinds: usize, limit: u32) -> (BTreeSet<u32>, Paging) {
        let reading = RelayReading {
            until: UntilReading::Unknown,
            cap: limit,
        };
        let mut p = Paging::new(since, until, kinds, reading);
        let mut got = BTreeSet::new();
        let mut guard = 0;
        while let Some(req) = p.request() {
            for (t, _, id) in relay.answer(&req, limit) {
                got.insert(id);
                p.on_event(t);
            }
            p.on_end();
            guard += 1;
            assert!(guard < 100_000, "paging does not end");
        }
        (got, p)
    }

    fn wanted(relay: &ModelRelay, since: u64, until: u64) -> BTreeSet<u32> {
        relay
            .events
            .iter()
            .filter(|(t, _, _)| (since..=until).contains(t))
            .map(|e| e.2)
            .collect()
    }

    #[test]
    fn bursts_across_page_boundaries_on_either_reading_of_until() {
        // 1,200 events in one second spread over 40 kinds, 700 in the next, a quiet tail.
        let mut events = Vec::new();
        let mut id = 0;
        for (t, n) in [(1000u64, 700u32), (999, 1200), (990, 3), (500, 1)] {
            for i in 0..n {
                events.push((t, (i % 40) as usize, id));
                id += 1;
            }
        }
        for exclusive in [false, true] {
            for cap in [500, 100] {
                let relay = ModelRelay {
                    events: events.clone(),
                    cap,
                    exclusive,
                };
                let (got, p) = run(&relay, 0, 1000, 40, 500);
                assert_eq!(got, wanted(&relay, 0, 1000), "exclusive {exclusive}, cap {cap}");
                assert_eq!(p.unresolved_seconds, 0);
                assert!(p.split_seconds >= 2, "both busy seconds are read kind by kind");
                let want = if exclusive {
                    UntilReading::Exclusive
                } else {
                    UntilReading::Inclusive
                };
                assert_eq!(p.reading().until, want);
                assert_eq!(p.reading().cap, cap as u32, "exclusive {exclusive}");
            }
        }
    }

    #[test]
    fn one_kind_filling_a_second_is_counted_as_unresolved() {
        let events: Vec<_> = (0..600).map(|i| (50u64, 3usize, i)).collect();
        let relay = ModelRelay {
            events,
            cap: 500,
            exclusive: false,
        };
        let (got, p) = run(&relay, 0, 100, 8, 500);
        assert_eq!(got.len(), 500);
        assert_eq!(p.unresolved_seconds, 1);
    }

    #[test]
    fn an_empty_range_is_one_request() {
        let relay = ModelRelay {
            events: vec![(5, 0, 0)],
            cap: 500,
            exclusive: true,
        };
        let (got, p) = run(&relay, 10, 20, 4, 500);
        assert!(got.is_empty());
        assert_eq!(p.requests, 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the relay's cap and reading of `until`, and however events crowd into seconds,
        /// every event in range is collected unless one kind alone overfills a second.
        #[test]
        fn every_event_is_collected(
            seconds in proptest::collection::vec((0u64..60, 1usize..400), 1..12),
            kinds in 1usize..30,
            cap in 100usize..600,
            exclusive in any::<bool>(),
            limit in 50u32..600,
        ) {
            let mut events = Vec::new();
            let mut id = 0u32;
            for (t, n) in seconds {
                for i in 0..n {
                    events.push((t, i % kinds, id));
                    id += 1;
                }
            }
            let relay = ModelRelay { events, cap, exclusive };
            let (got, p) = run(&relay, 5, 50, kinds, limit);
            let want = wanted(&relay, 5, 50);
            if p.unresolved_seconds == 0 {
                prop_assert!(want.is_subset(&got), "missing {:?}", want.difference(&got).collect::<Vec<_>>());
            }
            // Unresolved only when some kind alone has a page's worth of events in one second (a
            // page the relay could have been capped at).
            let mut per: std::collections::HashMap<(u64, usize), usize> = Default::default();
            for &(t, k, _) in &relay.events {
                // The pass reads one second past its end (51), so that second counts too.
                if (5..=51).contains(&t) {
                    *per.entry((t, k)).or_default() += 1;
                }
            }
            let page = cap.min(limit as usize).min(MIN_PLAUSIBLE_CAP as usize);
            let overfull = per.values().any(|&n| n >= page);
            prop_assert!(p.unresolved_seconds == 0 || overfull);
            // The pass reads one second past its end, so the end is read whichever way `until` is.
            prop_assert!(got.is_subset(&wanted(&relay, 5, 51)));
        }
    }
}
