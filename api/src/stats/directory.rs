//! The directory of DVM-like services: one row per pubkey from its current announcements (NIP-89,
//! ContextVM, encrypted DVMs), its ContextVM tools list, its profile and its activity; its
//! liveness from heartbeats and answers. Pure: the queries are in `crate::queries::entities`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dvmdash_core::dto::{Directory, DirectoryEntry, FamilyCounts, Liveness, rfc3339};
use dvmdash_core::event::Id32;
use dvmdash_core::kinds::{self, Family};
use dvmdash_core::nip90::truncate;

use super::liveness::{DAY_SECS, Seen, WEEK_SECS, counted_slots, percent};
use crate::queries::entities::{Announcement, RoleActivity};

/// What the directory is cut to: family filter, search, sort and page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DirectoryQuery {
    /// One of `dvmdash_core::dto::DIRECTORY_FAMILIES`.
    pub family: &'static str,
    pub limit: u64,
    pub offset: u64,
    /// Lowercased search text.
    pub search: Option<String>,
    pub sort: &'static str,
    pub descending: bool,
}

impl DirectoryQuery {
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}:{}",
            self.family,
            self.limit,
            self.offset,
            self.search.as_deref().unwrap_or(""),
            self.sort,
            self.descending
        )
    }
}

/// Most tool names listed per service, and their longest length.
const MAX_TOOLS: usize = 100;
const MAX_TOOL_NAME: usize = 80;

/// Everything known about one pubkey, gathered before it becomes a row.
#[derive(Default)]
struct Gathered<'a> {
    families: BTreeSet<Family>,
    announced_kinds: BTreeSet<u16>,
    tools: Vec<String>,
    announced_at: Option<u32>,
    seen: Seen,
    /// (kind, created_at, content) of its announcements and profile, for the name.
    profiles: Vec<(u16, u32, &'a str)>,
}

/// What the rows are built from besides the gathered facts.
pub struct Context<'a> {
    /// A result or feedback this recent makes a service alive.
    pub alive_window_secs: u64,
    /// Alive slot ends per service in the last day and week.
    pub alive: &'a HashMap<Id32, (u64, u64)>,
}

/// Builds the directory at `now`.
pub fn directory(
    now: u64,
    activity: &[RoleActivity],
    announcements: &[Announcement],
    q: &DirectoryQuery,
    c: &Context<'_>,
) -> Directory {
    let mut all = gather(activity, announcements)
        .into_iter()
        .filter_map(|(pk, g)| entry(now, &pk, g, c))
        .collect::<Vec<_>>();
    let counts = count(&all);
    let alive = all.iter().filter(|e| e.status == Liveness::Alive).count() as u64;
    all.retain(|e| in_family(e, q.family) && q.search.as_deref().is_none_or(|s| matches(e, s)));
    sort(&mut all, q.sort, q.descending);
    let (services, total) = super::page(all, q.offset, q.limit);
    Directory {
        timestamp: rfc3339(now),
        services,
        total,
        limit: q.limit,
        offset: q.offset,
        counts,
        alive,
    }
}

fn gather<'a>(activity: &[RoleActivity], announcements: &'a [Announcement]) -> BTreeMap<Id32, Gathered<'a>> {
    let mut by: BTreeMap<Id32, Gathered<'a>> = BTreeMap::new();
    let newer = |slot: &mut Option<u32>, t: u32| *slot = Some(slot.map_or(t, |s| s.max(t)));
    for a in activity {
        by.entry(a.pubkey).or_default().seen.add(a);
    }
    for a in announcements {
        // Only pubkeys already known to act as services: profiles and capability lists alone do
        // not make one, nor a NIP-89 announcement of no job kind (apps announce handlers too).
        let Some(g) = by.get_mut(&a.pubkey) else {
            continue;
        };
        g.profiles.push((a.kind, a.created_at, a.content.as_str()));
        if a.kind == 11317 {
            g.tools = tool_names(&a.content);
        }
        let Some(family) = kinds::family(a.kind) else {
            continue;
        };
        if family == Family::Nip89 && a.announced_kinds.is_empty() {
            continue;
        }
        g.families.insert(family);
        g.announced_kinds.extend(a.announced_kinds.iter().copied());
        newer(&mut g.announced_at, a.created_at);
    }
    by
}

/// The row of one pubkey, or `None` when it is not a service: it never answered, never sent a
/// heartbeat and announces no family.
fn entry(now: u64, pk: &Id32, g: Gathered<'_>, c: &Context<'_>) -> Option<DirectoryEntry> {
    let seen = g.seen;
    if g.families.is_empty() && seen.answer.is_none() && seen.heartbeat.is_none() {
        return None;
    }
    let (day, week) = c.alive.get(pk).copied().unwrap_or_default();
    let first = seen.first.unwrap_or(now);
    let profile = dvmdash_core::profile::choose(g.profiles).unwrap_or_default();
    let t = |v: Option<u32>| v.map(u64::from);
    Some(DirectoryEntry {
        id: hex::encode(pk),
        npub: dvmdash_core::nip19::npub(pk),
        name: profile.name,
        about: profile.about,
        picture: profile.picture,
        families: g.families.into_iter().collect(),
        announced_kinds: g.announced_kinds.into_iter().collect(),
        tools: g.tools,
        announced_at: t(g.announced_at).map(rfc3339),
        announcement_age_seconds: t(g.announced_at).map(|a| now.saturating_sub(a)),
        status: Liveness::at(now, seen.heartbeat, seen.answer, c.alive_window_secs),
        last_heartbeat: seen.heartbeat.map(rfc3339),
        last_result: seen.answer.map(rfc3339),
        first_seen: seen.first.map(rfc3339),
        uptime_24h: percent(day, counted_slots(now, DAY_SECS, first)),
        uptime_7d: percent(week, counted_slots(now, WEEK_SECS, first)),
    })
}

/// Tool names from a ContextVM tools list (`{"tools": [{"name": ...}, ...]}`, MCP's
/// `tools/list` result); anything else gives none.
fn tool_names(content: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(content) else {
        return Vec::new();
    };
    v.get("tools")
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name")?.as_str())
        .map(|n| truncate(n.trim(), MAX_TOOL_NAME).to_owned())
        .filter(|n| !n.is_empty())
        .take(MAX_TOOLS)
        .collect()
}

fn count(all: &[DirectoryEntry]) -> FamilyCounts {
    let has = |f: Family| all.iter().filter(|e| e.families.contains(&f)).count() as u64;
    FamilyCounts {
        all: all.len() as u64,
        nip89: has(Family::Nip89),
        contextvm: has(Family::Contextvm),
        encrypted: has(Family::Encrypted),
        unannounced: all.iter().filter(|e| e.families.is_empty()).count() as u64,
    }
}

fn in_family(e: &DirectoryEntry, family: &str) -> bool {
    match family {
        "all" => true,
        "unannounced" => e.families.is_empty(),
        f => e.families.iter().any(|x| x.as_str() == f),
    }
}

fn matches(e: &DirectoryEntry, s: &str) -> bool {
    let text = |v: &Option<String>| v.as_deref().is_some_and(|t| t.to_lowercase().contains(s));
    e.id.contains(s)
        || e.npub.contains(s)
        || text(&e.name)
        || text(&e.about)
        || e.tools.iter().any(|t| t.to_lowercase().contains(s))
}

fn sort(all: &mut [DirectoryEntry], by: &str, descending: bool) {
    let last = |e: &DirectoryEntry| {
        e.last_result
            .clone()
            .max(e.last_heartbeat.clone())
            .max(e.announced_at.clone())
    };
    match by {
        "name" => all.sort_by_cached_key(|e| (e.name.as_deref().map(str::to_lowercase), e.id.clone())),
        "announced_at" => all.sort_by_cached_key(|e| (e.announced_at.clone(), e.id.clone())),
        _ => all.sort_by_cached_key(|e| (last(e), e.id.clone())),
    }
    if descending {
        all.reverse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 2_000_000_000;

    fn pk(b: u8) -> Id32 {
        [b; 32]
    }

    fn act(role: &str, b: u8, last: u64) -> RoleActivity {
        RoleActivity {
            role: role.into(),
            pubkey: pk(b),
            first_seen: (last - 100) as u32,
            last_seen: last as u32,
        }
    }

    fn ann(b: u8, kind: u16, at: u64, content: &str, k: &[u16]) -> Announcement {
        Announcement {
            pubkey: pk(b),
            kind,
            d_tag: String::new(),
            created_at: at as u32,
            content: content.into(),
            announced_kinds: k.to_vec(),
        }
    }

    fn query(family: &'static str) -> DirectoryQuery {
        DirectoryQuery {
            family,
            limit: 100,
            offset: 0,
            search: None,
            sort: "last_seen",
            descending: true,
        }
    }

    fn ctx(alive_window_secs: u64, alive: &HashMap<Id32, (u64, u64)>) -> Context<'_> {
        Context {
            alive_window_secs,
            alive,
        }
    }

    #[test]
    fn one_row_per_service_across_families_with_liveness() {
        let activity = vec![
            // 1: NIP-89 and ContextVM, heartbeat 10 minutes ago.
            act("announcement", 1, NOW - 5000),
            act("service_announcement", 1, NOW - 4000),
            act("heartbeat", 1, NOW - 600),
            // 2: results only, an hour and a half ago.
            act("result", 2, NOW - 5400),
            // 3: an encrypted DVM announced long ago, silent.
            act("service_announcement", 3, NOW - 30 * 86_400),
            // 4: an app's NIP-89 handler for kind 1: not a service.
            act("announcement", 4, NOW - 100),
        ];
        let anns = vec![
            ann(1, 31990, NOW - 5000, r#"{"name":"Both"}"#, &[5300]),
            ann(1, 11316, NOW - 4000, r#"{"name":"Both (MCP)"}"#, &[]),
            ann(
                1,
                11317,
                NOW - 4000,
                r#"{"tools":[{"name":"search"},{"name":"  "},{"x":1}]}"#,
                &[],
            ),
            ann(2, 0, NOW - 9000, r#"{"name":"Quiet"}"#, &[]),
            ann(3, 11999, NOW - 30 * 86_400, "not json {", &[5100]),
            ann(4, 31990, NOW - 100, r#"{"name":"An app"}"#, &[]),
        ];
        // Service 1 was alive at 100 slot ends of the last day and 150 of the week.
        let alive = HashMap::from([(pk(1), (100, 150))]);
        let d = directory(NOW, &activity, &anns, &query("all"), &ctx(3600, &alive));
        assert_eq!(d.total, 3, "{:?}", d.services);
        assert_eq!(
            d.counts,
            FamilyCounts {
                all: 3,
                nip89: 1,
                contextvm: 1,
                encrypted: 1,
                unannounced: 1
            }
        );
        let both = &d.services[0];
        assert_eq!(both.families, vec![Family::Nip89, Family::Contextvm]);
        assert_eq!(both.announced_kinds, vec![5300]);
        assert_eq!(both.tools, vec!["search"]);
        assert_eq!(both.status, Liveness::Alive);
        assert_eq!(both.announcement_age_seconds, Some(4000));
        // First seen 5000 s ago: the slot ends since then are the ones that count.
        let since = counted_slots(NOW, DAY_SECS, NOW - 5000);
        assert_eq!(both.uptime_24h, percent(100, since));
        assert_eq!(both.uptime_7d, Some(100.0), "capped at every counted slot");
        assert_eq!(d.services[2].uptime_7d, Some(0.0), "announced, never alive");
        let quiet = &d.services[1];
        assert_eq!(
            (quiet.name.as_deref(), quiet.status),
            (Some("Quiet"), Liveness::Idle)
        );
        assert!(quiet.families.is_empty());
        let encrypted = &d.services[2];
        assert_eq!(
            (encrypted.name.as_deref(), encrypted.status),
            (None, Liveness::Silent)
        );
        assert_eq!(d.alive, 1);

        let only = directory(NOW, &activity, &anns, &query("encrypted"), &ctx(3600, &alive));
        assert_eq!(
            only.services.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
            vec![hex::encode(pk(3))]
        );
        assert_eq!(only.counts.all, 3, "counts ignore the filter");
        let mut q = query("all");
        q.search = Some("search".into());
        assert_eq!(
            directory(NOW, &activity, &anns, &q, &ctx(3600, &alive)).total,
            1,
            "tools are searched"
        );
        // A longer alive window makes the results-only service alive.
        let d = directory(NOW, &activity, &anns, &query("unannounced"), &ctx(7200, &alive));
        assert_eq!(d.services[0].status, Liveness::Alive);
    }

    #[test]
    fn hostile_tool_lists_are_bounded() {
        let long = "x".repeat(10_000);
        let many: Vec<_> = (0..10_000)
            .map(|i| serde_json::json!({ "name": format!("t{i}") }))
            .collect();
        let content = serde_json::json!({ "tools": [{ "name": long }] }).to_string();
        assert_eq!(tool_names(&content)[0].chars().count(), MAX_TOOL_NAME);
        let content = serde_json::json!({ "tools": many }).to_string();
        assert_eq!(tool_names(&content).len(), MAX_TOOLS);
        for junk in ["", "null", "[]", r#"{"tools":"x"}"#, r#"{"tools":[1,2]}"#] {
            assert!(tool_names(junk).is_empty(), "{junk}");
        }
    }
}
