//! `GET /api/contextvm/traffic`: ContextVM calls and responses watched live, per server and per
//! method and name called. Pure; the queries are in `crate::queries::contextvm`. Definitions:
//! docs/statistics.md, "Live ContextVM traffic".

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dvmdash_core::dto::{ContextvmCapability, ContextvmPoint, ContextvmServer, ContextvmTraffic, rfc3339};
use dvmdash_core::event::Id32;

use super::{DvmDirectory, fill_by, hex, period};
use crate::queries::Window;
use crate::queries::contextvm::Message;

#[derive(Default)]
struct Counts {
    calls: u64,
    responses: u64,
    errors: u64,
}

#[derive(Default)]
struct Server {
    counts: Counts,
    clients: BTreeSet<Id32>,
    /// (method, name) -> counts
    capabilities: BTreeMap<(String, String), Counts>,
}

fn is_call(m: &Message) -> bool {
    !m.method.is_empty()
}

fn is_response(m: &Message) -> bool {
    m.status == "success" || m.status == "error"
}

pub fn traffic(
    w: &Window,
    seen_live_since: Option<u64>,
    messages: &[Message],
    earlier_calls: &[Message],
    dir: &DvmDirectory,
) -> ContextvmTraffic {
    let calls: HashMap<Id32, &Message> = messages
        .iter()
        .chain(earlier_calls)
        .filter(|m| is_call(m))
        .map(|m| (m.event_id, m))
        .collect();
    let step = w.range.step_seconds() as u32;
    let mut total = Counts::default();
    let mut answered = 0u64;
    let mut servers: BTreeMap<Id32, Server> = BTreeMap::new();
    let mut series: HashMap<u32, Counts> = HashMap::new();
    for m in messages {
        let bucket = series.entry(m.at / step * step).or_default();
        if is_call(m) {
            total.calls += 1;
            bucket.calls += 1;
            let named: BTreeSet<Id32> = m.servers.iter().copied().collect();
            for server in named {
                let s = servers.entry(server).or_default();
                s.counts.calls += 1;
                s.clients.insert(m.author);
                let cap = (m.method.clone(), m.name.clone());
                s.capabilities.entry(cap).or_default().calls += 1;
            }
        } else if is_response(m) {
            let error = u64::from(m.status == "error");
            total.responses += 1;
            total.errors += error;
            bucket.responses += 1;
            let call = calls.get(&m.request_id);
            answered += u64::from(call.is_some());
            let cap = call.map_or_else(Default::default, |c| (c.method.clone(), c.name.clone()));
            let s = servers.entry(m.author).or_default();
            s.counts.responses += 1;
            s.counts.errors += error;
            let c = s.capabilities.entry(cap).or_default();
            c.responses += 1;
            c.errors += error;
        }
    }
    let mut servers: Vec<ContextvmServer> = servers
        .into_iter()
        .map(|(pk, s)| {
            let mut capabilities: Vec<ContextvmCapability> = s
                .capabilities
                .into_iter()
                .map(|((method, name), c)| ContextvmCapability {
                    method,
                    name,
                    calls: c.calls,
                    responses: c.responses,
                    errors: c.errors,
                })
                .collect();
            // Most used first; ties in (method, name) order, kept by the stable sort.
            capabilities.sort_by_key(|c| std::cmp::Reverse(c.calls + c.responses));
            ContextvmServer {
                server_id: hex(&pk),
                server_name: dir.name(&pk),
                is_dvm: dir.is_dvm(&pk),
                calls: s.counts.calls,
                responses: s.counts.responses,
                errors: s.counts.errors,
                clients: s.clients.len() as u64,
                capabilities,
            }
        })
        .collect();
    servers.sort_by_key(|s| std::cmp::Reverse(s.calls + s.responses));
    let (timestamp, period_start, period_end) = period(w);
    ContextvmTraffic {
        timestamp,
        period_start,
        period_end,
        seen_live_since: seen_live_since.map(rfc3339),
        calls: total.calls,
        responses: total.responses,
        errors: total.errors,
        answered,
        servers,
        time_series: fill_by(w, &series, |time, c: &Counts| ContextvmPoint {
            time,
            calls: c.calls,
            responses: c.responses,
        }),
    }
}
