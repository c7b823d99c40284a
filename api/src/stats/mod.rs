//! Turns query rows into answers. Every definition here follows docs/statistics.md; the functions
//! are pure so they are unit-tested without a database.

pub mod contextvm;
pub mod coverage;
pub mod directory;
pub mod jobs;
pub mod kinds_usage;
pub mod liveness;
pub mod payments;
pub mod quality;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dvmdash_core::dto::{
    self, DvmKindActivity, DvmPoint, DvmStats, DvmSummary, GlobalPoint, GlobalStats, KindDvmActivity,
    KindPoint, KindStats, KindSummary, Profile, rfc3339,
};
use dvmdash_core::event::Id32;
use dvmdash_core::kinds::{ANNOUNCEMENT_KIND, kind_name};
use dvmdash_core::nip19::npub;

use crate::queries::Window;
use crate::queries::entities::{Activity, Announcement, KindActivity};
use crate::queries::window::{Answered, Bucket, Directed, Fact};

pub fn hex(id: &Id32) -> String {
    hex::encode(id)
}

/// Sums and distinct authors of a window's facts, indexed the ways the endpoints need them.
#[derive(Debug, Default)]
pub struct WindowCounts {
    pub requests: u64,
    pub results: u64,
    pub feedback: u64,
    pub customers: BTreeSet<Id32>,
    pub dvms: BTreeSet<Id32>,
    /// Requests per request kind.
    pub requests_by_kind: BTreeMap<u16, u64>,
    /// Results per job kind.
    pub results_by_kind: BTreeMap<u16, u64>,
    /// (results, feedback) per DVM.
    pub by_dvm: BTreeMap<Id32, (u64, u64)>,
    /// Results per (DVM, job kind).
    pub results_by_dvm_kind: BTreeMap<(Id32, u16), u64>,
}

impl WindowCounts {
    pub fn from_facts(facts: &[Fact]) -> Self {
        let mut c = WindowCounts::default();
        for f in facts {
            match f.role.as_str() {
                "request" => {
                    c.requests += f.events;
                    c.customers.insert(f.pubkey);
                    *c.requests_by_kind.entry(f.job_kind).or_default() += f.events;
                }
                "result" => {
                    c.results += f.events;
                    c.dvms.insert(f.pubkey);
                    c.by_dvm.entry(f.pubkey).or_default().0 += f.events;
                    if f.job_kind > 0 {
                        *c.results_by_kind.entry(f.job_kind).or_default() += f.events;
                        *c.results_by_dvm_kind.entry((f.pubkey, f.job_kind)).or_default() += f.events;
                    }
                }
                "feedback" => {
                    c.feedback += f.events;
                    c.dvms.insert(f.pubkey);
                    c.by_dvm.entry(f.pubkey).or_default().1 += f.events;
                }
                _ => {}
            }
        }
        c
    }
}

/// The key with the largest value; ties go to the smallest key (maps iterate in key order).
fn most<K: Copy + Ord>(counts: impl IntoIterator<Item = (K, u64)>) -> Option<K> {
    let mut best: Option<(K, u64)> = None;
    for (k, v) in counts {
        if v > 0 && best.is_none_or(|(bk, bv)| v > bv || (v == bv && k < bk)) {
            best = Some((k, v));
        }
    }
    best.map(|(k, _)| k)
}

/// One entry per bucket from the window's first bucket to the one holding `now`.
fn fill<T>(w: &Window, buckets: &[Bucket], point: impl FnMut(String, &Bucket) -> T) -> Vec<T> {
    let by_start: HashMap<u32, &Bucket> = buckets.iter().map(|b| (b.bucket, b)).collect();
    fill_by(w, &by_start, point)
}

/// [`fill`] for any bucket type, keyed by bucket start; missing buckets are the default.
fn fill_by<B: Default, K: std::borrow::Borrow<B>, T>(
    w: &Window,
    by_start: &HashMap<u32, K>,
    mut point: impl FnMut(String, &B) -> T,
) -> Vec<T> {
    let step = w.range.step_seconds() as u32;
    let empty = B::default();
    let mut out = Vec::new();
    let mut t = w.first_bucket();
    let last = w.now / step * step;
    while t <= last {
        let b = by_start.get(&t).map_or(&empty, |b| b.borrow());
        out.push(point(rfc3339(u64::from(t)), b));
        t += step;
    }
    out
}

pub fn global(w: &Window, facts: &[Fact], buckets: &[Bucket]) -> GlobalStats {
    let c = WindowCounts::from_facts(facts);
    let mut competitors: BTreeMap<u16, BTreeSet<Id32>> = BTreeMap::new();
    for (dvm, kind) in c.results_by_dvm_kind.keys() {
        competitors.entry(*kind).or_default().insert(*dvm);
    }
    GlobalStats {
        timestamp: rfc3339(u64::from(w.now)),
        period_start: rfc3339(u64::from(w.start)),
        period_end: rfc3339(u64::from(w.now)),
        total_requests: c.requests,
        total_responses: c.results,
        total_feedback: c.feedback,
        unique_users: c.customers.len() as u64,
        unique_kinds: c.requests_by_kind.len() as u64,
        unique_dvms: c.dvms.len() as u64,
        popular_dvm: most(c.by_dvm.iter().map(|(k, (r, f))| (*k, r + f))).map(|k| hex(&k)),
        popular_kind: most(c.requests_by_kind.iter().map(|(k, v)| (*k, *v))),
        competitive_kind: most(competitors.iter().map(|(k, s)| (*k, s.len() as u64))),
        time_series: fill(w, buckets, |time, b| GlobalPoint {
            time,
            total_requests: b.requests,
            total_responses: b.results,
            total_feedback: b.feedback,
            unique_users: b.customers,
            unique_dvms: b.dvms,
        }),
    }
}

/// An answer's `(timestamp, period_start, period_end)` for its window.
pub(crate) fn period(w: &Window) -> (String, String, String) {
    (
        rfc3339(u64::from(w.now)),
        rfc3339(u64::from(w.start)),
        rfc3339(u64::from(w.now)),
    )
}

/// One page of a sorted list, and how many items the whole list held.
pub fn page<T>(all: Vec<T>, offset: u64, limit: u64) -> (Vec<T>, u64) {
    let total = all.len() as u64;
    let items = all
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    (items, total)
}

/// Everything known about DVMs for all time: first/last seen, served and announced kinds, profiles.
#[derive(Debug, Default)]
pub struct DvmDirectory {
    pub first_seen: HashMap<Id32, u32>,
    pub last_seen: HashMap<Id32, u32>,
    pub served: HashMap<Id32, BTreeSet<u16>>,
    pub announced: HashMap<Id32, BTreeSet<u16>>,
    pub profiles: HashMap<Id32, Profile>,
}

impl DvmDirectory {
    pub fn new(activity: &[Activity], announcements: &[Announcement]) -> Self {
        let mut d = DvmDirectory::default();
        for a in activity {
            let first = d.first_seen.entry(a.pubkey).or_insert(a.first_seen);
            *first = (*first).min(a.first_seen);
            if a.role == "result" || a.role == "feedback" {
                let last = d.last_seen.entry(a.pubkey).or_insert(a.last_seen);
                *last = (*last).max(a.last_seen);
            }
            if a.role == "result" && a.job_kind > 0 {
                d.served.entry(a.pubkey).or_default().insert(a.job_kind);
            }
        }
        let mut candidates: HashMap<Id32, Vec<(u16, u32, &str)>> = HashMap::new();
        for a in announcements {
            if a.kind == ANNOUNCEMENT_KIND {
                d.announced
                    .entry(a.pubkey)
                    .or_default()
                    .extend(a.announced_kinds.iter().copied());
            }
            candidates
                .entry(a.pubkey)
                .or_default()
                .push((a.kind, a.created_at, a.content.as_str()));
        }
        for (pk, c) in candidates {
            if let Some(p) = dvmdash_core::profile::choose(c) {
                d.profiles.insert(pk, p);
            }
        }
        d
    }

    /// A pubkey is a DVM when it ever sent a result, feedback or announcement.
    pub fn is_dvm(&self, pk: &Id32) -> bool {
        self.first_seen.contains_key(pk)
    }

    pub fn name(&self, pk: &Id32) -> Option<String> {
        self.profiles.get(pk).and_then(|p| p.name.clone())
    }

    /// DVMDash's `supported_kinds`: job kinds it answered with results, all time.
    pub fn supported(&self, pk: &Id32) -> Vec<u16> {
        self.served.get(pk).into_iter().flatten().copied().collect()
    }

    /// Kinds in its current NIP-89 announcements.
    pub fn announced(&self, pk: &Id32) -> Vec<u16> {
        self.announced.get(pk).into_iter().flatten().copied().collect()
    }
}

fn seen(t: Option<&u32>) -> Option<String> {
    t.map(|t| rfc3339(u64::from(*t)))
}

/// Per-DVM counts of a window, beyond the facts.
pub struct DvmExtras<'a> {
    pub directed: &'a [Directed],
    pub answered: &'a [Answered],
}

pub fn dvm_summaries(
    w: &Window,
    facts: &[Fact],
    extras: &DvmExtras<'_>,
    dir: &DvmDirectory,
) -> Vec<DvmSummary> {
    let c = WindowCounts::from_facts(facts);
    let directed: HashMap<Id32, u64> = extras.directed.iter().map(|d| (d.target, d.requests)).collect();
    let answered: HashMap<Id32, u64> = extras.answered.iter().map(|a| (a.pubkey, a.jobs)).collect();
    c.by_dvm
        .iter()
        .map(|(pk, (results, feedback))| {
            let profile = dir.profiles.get(pk).cloned().unwrap_or_default();
            let supported = dir.supported(pk);
            let last = dir.last_seen.get(pk);
            DvmSummary {
                id: hex(pk),
                npub: npub(pk),
                last_seen: seen(last),
                first_seen: seen(dir.first_seen.get(pk)),
                is_active: last.is_some_and(|l| u64::from(*l) + 86_400 >= u64::from(w.now)),
                num_supporting_kinds: supported.len() as u64,
                supported_kinds: supported,
                announced_kinds: dir.announced(pk),
                total_responses: *results,
                total_feedback: *feedback,
                total_events: results + feedback,
                total_requests: directed.get(pk).copied().unwrap_or(0),
                jobs_answered: answered.get(pk).copied().unwrap_or(0),
                dvm_name: profile.name,
                dvm_about: profile.about,
                dvm_picture: profile.picture,
            }
        })
        .collect()
}

pub fn dvm_stats(
    w: &Window,
    pk: &Id32,
    facts: &[Fact],
    extras: &DvmExtras<'_>,
    dir: &DvmDirectory,
    buckets: &[Bucket],
) -> DvmStats {
    let c = WindowCounts::from_facts(facts);
    let (results, feedback) = c.by_dvm.get(pk).copied().unwrap_or((0, 0));
    let profile = dir.profiles.get(pk).cloned().unwrap_or_default();
    let served: BTreeSet<u16> = dir.served.get(pk).cloned().unwrap_or_default();
    let announced: BTreeSet<u16> = dir.announced.get(pk).cloned().unwrap_or_default();
    DvmStats {
        dvm_id: hex(pk),
        npub: npub(pk),
        dvm_name: profile.name.clone(),
        dvm_about: profile.about.clone(),
        dvm_picture: profile.picture.clone(),
        profile,
        timestamp: rfc3339(u64::from(w.now)),
        period_start: rfc3339(u64::from(w.start)),
        period_end: rfc3339(u64::from(w.now)),
        first_seen: seen(dir.first_seen.get(pk)),
        last_seen: seen(dir.last_seen.get(pk)),
        total_responses: results,
        total_feedback: feedback,
        total_requests: extras
            .directed
            .iter()
            .find(|d| &d.target == pk)
            .map_or(0, |d| d.requests),
        jobs_answered: extras
            .answered
            .iter()
            .find(|a| &a.pubkey == pk)
            .map_or(0, |a| a.jobs),
        supported_kinds: dir.supported(pk),
        announced_not_served: announced.difference(&served).copied().collect(),
        served_not_announced: served.difference(&announced).copied().collect(),
        announced_kinds: announced.into_iter().collect(),
        served_kinds: served.into_iter().collect(),
        kinds: c
            .results_by_dvm_kind
            .iter()
            .filter(|((d, _), _)| d == pk)
            .map(|((_, kind), n)| DvmKindActivity {
                kind: *kind,
                total_responses: *n,
            })
            .collect(),
        time_series: fill(w, buckets, |time, b| DvmPoint {
            time,
            total_responses: b.results,
            total_feedback: b.feedback,
        }),
    }
}

/// All-time facts about job kinds.
#[derive(Debug, Default)]
pub struct KindDirectory {
    pub first_seen: BTreeMap<u16, u32>,
    pub last_seen: BTreeMap<u16, u32>,
    /// DVMs that ever sent a result of the kind.
    pub supporting: BTreeMap<u16, BTreeSet<Id32>>,
    pub announcing: BTreeMap<u16, u64>,
}

impl KindDirectory {
    pub fn new(kinds: &[KindActivity], dvms: &[Activity], dir: &DvmDirectory) -> Self {
        let mut k = KindDirectory::default();
        for a in kinds {
            let f = k.first_seen.entry(a.job_kind).or_insert(a.first_seen);
            *f = (*f).min(a.first_seen);
            let l = k.last_seen.entry(a.job_kind).or_insert(a.last_seen);
            *l = (*l).max(a.last_seen);
        }
        for a in dvms.iter().filter(|a| a.role == "result" && a.job_kind > 0) {
            k.supporting.entry(a.job_kind).or_default().insert(a.pubkey);
        }
        for kinds in dir.announced.values() {
            for kind in kinds {
                *k.announcing.entry(*kind).or_default() += 1;
            }
        }
        k
    }

    pub fn is_known(&self, kind: u16) -> bool {
        self.last_seen.contains_key(&kind)
    }
}

pub fn kind_summaries(facts: &[Fact], kd: &KindDirectory) -> Vec<KindSummary> {
    let c = WindowCounts::from_facts(facts);
    let kinds: BTreeSet<u16> = c
        .requests_by_kind
        .keys()
        .chain(c.results_by_kind.keys())
        .copied()
        .collect();
    kinds
        .into_iter()
        .map(|kind| KindSummary {
            kind,
            name: kind_name(kind).map(str::to_owned),
            last_seen: seen(kd.last_seen.get(&kind)),
            num_supporting_dvms: kd.supporting.get(&kind).map_or(0, |s| s.len() as u64),
            num_announcing_dvms: kd.announcing.get(&kind).copied().unwrap_or(0),
            total_requests: c.requests_by_kind.get(&kind).copied().unwrap_or(0),
            total_responses: c.results_by_kind.get(&kind).copied().unwrap_or(0),
        })
        .collect()
}

pub fn kind_stats(
    w: &Window,
    kind: u16,
    facts: &[Fact],
    kd: &KindDirectory,
    dir: &DvmDirectory,
    buckets: &[Bucket],
) -> KindStats {
    let c = WindowCounts::from_facts(facts);
    let supporting: Vec<String> = kd.supporting.get(&kind).into_iter().flatten().map(hex).collect();
    let mut top: Vec<KindDvmActivity> = c
        .results_by_dvm_kind
        .iter()
        .filter(|((_, k), _)| *k == kind)
        .map(|((pk, _), n)| KindDvmActivity {
            dvm_id: hex(pk),
            dvm_name: dir.name(pk),
            total_responses: *n,
        })
        .collect();
    top.sort_by(|a, b| {
        b.total_responses
            .cmp(&a.total_responses)
            .then_with(|| a.dvm_id.cmp(&b.dvm_id))
    });
    KindStats {
        kind,
        name: kind_name(kind).map(str::to_owned),
        timestamp: rfc3339(u64::from(w.now)),
        period_start: rfc3339(u64::from(w.start)),
        period_end: rfc3339(u64::from(w.now)),
        total_requests: c.requests_by_kind.get(&kind).copied().unwrap_or(0),
        total_responses: c.results_by_kind.get(&kind).copied().unwrap_or(0),
        num_supporting_dvms: supporting.len() as u64,
        supporting_dvms: supporting,
        top_dvms: top,
        time_series: fill(w, buckets, |time, b| KindPoint {
            time,
            total_requests: b.requests,
            total_responses: b.results,
        }),
    }
}

/// `YYYY-MM` of a month start given in days since 1970-01-01.
pub fn month_label(days: u16) -> String {
    rfc3339(u64::from(days) * 86_400)[..7].to_owned()
}

/// DVMs and kinds first seen in the window.
pub fn whats_new(w: &Window, dir: &DvmDirectory, kd: &KindDirectory) -> dto::WhatsNew {
    let mut dvms: Vec<(u32, Id32)> = dir
        .first_seen
        .iter()
        .filter(|(_, t)| **t >= w.start)
        .map(|(pk, t)| (*t, *pk))
        .collect();
    dvms.sort();
    let mut kinds: Vec<(u32, u16)> = kd
        .first_seen
        .iter()
        .filter(|(_, t)| **t >= w.start)
        .map(|(k, t)| (*t, *k))
        .collect();
    kinds.sort();
    dto::WhatsNew {
        timestamp: rfc3339(u64::from(w.now)),
        period_start: rfc3339(u64::from(w.start)),
        period_end: rfc3339(u64::from(w.now)),
        dvms: dvms
            .into_iter()
            .map(|(t, pk)| dto::NewDvm {
                dvm_id: hex(&pk),
                dvm_name: dir.name(&pk),
                first_seen: rfc3339(u64::from(t)),
            })
            .collect(),
        kinds: kinds
            .into_iter()
            .map(|(t, k)| dto::NewKind {
                kind: k,
                name: kind_name(k).map(str::to_owned),
                first_seen: rfc3339(u64::from(t)),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dvmdash_core::dto::TimeRange;

    fn pk(b: u8) -> Id32 {
        [b; 32]
    }

    fn fact(role: &str, kind: u16, who: u8, n: u64) -> Fact {
        Fact {
            role: role.into(),
            job_kind: kind,
            pubkey: pk(who),
            events: n,
        }
    }

    #[test]
    fn global_counts_and_rankings() {
        let w = Window::new(TimeRange::Day, 1_750_000_000);
        let facts = vec![
            fact("request", 5300, 1, 10),
            fact("request", 5300, 2, 5),
            fact("request", 5100, 2, 15),
            fact("result", 5300, 9, 7),
            fact("result", 5300, 8, 7),
            fact("result", 5100, 9, 1),
            fact("feedback", 0, 7, 3),
        ];
        let g = global(&w, &facts, &[]);
        assert_eq!(
            (g.total_requests, g.total_responses, g.total_feedback),
            (30, 15, 3)
        );
        assert_eq!((g.unique_users, g.unique_kinds, g.unique_dvms), (2, 2, 3));
        assert_eq!(g.popular_dvm, Some(hex(&pk(9))), "9 has 8 events");
        assert_eq!(g.popular_kind, Some(5100), "a 15-15 tie goes to the smaller kind");
        assert_eq!(g.competitive_kind, Some(5300));
        assert_eq!(g.time_series.len(), 25);
    }

    #[test]
    fn rankings_break_ties_by_smallest_key() {
        assert_eq!(most([(3u16, 5), (1, 5), (2, 4)]), Some(1));
        assert_eq!(most([(3u16, 0)]), None);
        assert_eq!(most(Vec::<(u16, u64)>::new()), None);
    }

    #[test]
    fn directory_merges_served_and_announced() {
        let activity = vec![
            Activity {
                role: "result".into(),
                pubkey: pk(1),
                job_kind: 5300,
                first_seen: 100,
                last_seen: 500,
                events: 3,
            },
            Activity {
                role: "feedback".into(),
                pubkey: pk(1),
                job_kind: 0,
                first_seen: 50,
                last_seen: 600,
                events: 1,
            },
            Activity {
                role: "announcement".into(),
                pubkey: pk(2),
                job_kind: 0,
                first_seen: 10,
                last_seen: 10,
                events: 1,
            },
        ];
        let ann = vec![Announcement {
            pubkey: pk(1),
            kind: 31990,
            d_tag: "x".into(),
            created_at: 5,
            content: r#"{"name":"One"}"#.into(),
            announced_kinds: vec![5300, 5301],
        }];
        let d = DvmDirectory::new(&activity, &ann);
        assert_eq!(d.first_seen[&pk(1)], 50);
        assert_eq!(d.last_seen[&pk(1)], 600);
        assert!(d.is_dvm(&pk(2)) && !d.is_dvm(&pk(3)));
        // DVMDash's meaning: served only; announcements have their own field.
        assert_eq!(d.supported(&pk(1)), vec![5300]);
        assert_eq!(d.announced(&pk(1)), vec![5300, 5301]);
        assert_eq!(d.name(&pk(1)).as_deref(), Some("One"));
        assert_eq!(month_label(19_723), "2024-01");
    }
}
