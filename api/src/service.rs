//! The statistics service: runs the queries of one answer in parallel with a single `now`, composes
//! the answer (`crate::stats`) and serializes it. Handlers call these through the response cache.

use axum::body::Bytes;
use dvmdash_core::dto::{DvmList, DvmSummary, KindList, KindSummary, TimeRange};
use dvmdash_core::event::Id32;
use dvmdash_core::job_ledger::Clock;
use dvmdash_core::telemetry::now_secs;
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::params::ListQuery;
use crate::queries::jobs::{Grouping, JobTimeouts};
use crate::queries::window::SeriesFilter;
use crate::queries::{
    Window, contextvm, coverage, entities, history, jobs, ledger, liveness, payments, quality, window,
};
use crate::stats::{self, DvmDirectory, DvmExtras, KindDirectory};

#[derive(Clone)]
pub struct Service {
    pub ch: clickhouse::Client,
    pub timeouts: JobTimeouts,
    /// A result or feedback this recent makes a service alive (directory liveness).
    pub alive_window_secs: u64,
}

/// Job statistics older than this are computed from raw events instead of the ledger.
pub const LEDGER_MAX_AGE_SECS: u64 = 600;

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn json<T: Serialize>(v: &T) -> ApiResult<Bytes> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(format!("serializing the answer: {e}")))
}

pub use dvmdash_core::dto::{DVM_SORTS, KIND_SORTS};

impl Service {
    fn window(&self, range: TimeRange) -> Window {
        Window::new(range, now_secs())
    }

    /// The window of a job statistic (and of the DVM list and detail, whose answered jobs the
    /// finalizer keeps) and whether the job ledger answers it: as of the ledger's clock while its
    /// finalizer keeps up, else now from raw events (no finalizer ever ran, or it stopped more
    /// than [`LEDGER_MAX_AGE_SECS`] ago).
    async fn job_window(&self, range: TimeRange) -> ApiResult<(Window, bool)> {
        self.ledger_window(range, Clock::Jobs).await
    }

    /// [`Self::job_window`] for the DVM list and detail, whose answered jobs follow the
    /// finalizer's answers clock (it moves even during a long relink).
    async fn answered_window(&self, range: TimeRange) -> ApiResult<(Window, bool)> {
        self.ledger_window(range, Clock::Answers).await
    }

    async fn ledger_window(&self, range: TimeRange, clock: Clock) -> ApiResult<(Window, bool)> {
        let now = now_secs();
        match dvmdash_core::job_ledger::as_of_clock(&self.ch, clock).await? {
            Some(t) if u64::from(t) + LEDGER_MAX_AGE_SECS >= now => {
                Ok((Window::new(range, u64::from(t)), true))
            }
            _ => Ok((Window::new(range, now), false)),
        }
    }

    async fn directory(&self) -> clickhouse::error::Result<(Vec<entities::Activity>, DvmDirectory)> {
        let (activity, announcements) = tokio::try_join!(
            entities::dvm_activity(&self.ch),
            entities::announcements(&self.ch)
        )?;
        let dir = DvmDirectory::new(&activity, &announcements);
        Ok((activity, dir))
    }

    /// Every DVM-like service, whichever family announced it, with its liveness.
    pub async fn directory_page(&self, q: &crate::stats::directory::DirectoryQuery) -> ApiResult<Bytes> {
        let now = now_secs();
        let (activity, announcements, counts) = tokio::try_join!(
            entities::service_activity(&self.ch),
            entities::announcements(&self.ch),
            liveness::alive_counts(&self.ch, clamp_u32(now), self.alive_window()),
        )?;
        let alive = counts.into_iter().map(|c| (c.pubkey, (c.day, c.week))).collect();
        let context = crate::stats::directory::Context {
            alive_window_secs: self.alive_window_secs,
            alive: &alive,
        };
        json(&crate::stats::directory::directory(
            now,
            &activity,
            &announcements,
            q,
            &context,
        ))
    }

    /// One service's status, uptime and status timeline.
    pub async fn liveness(&self, pk: Id32) -> ApiResult<Bytes> {
        let now = now_secs();
        let (activity, slots) = tokio::try_join!(
            entities::service_activity(&self.ch),
            liveness::alive_slots(&self.ch, &pk, clamp_u32(now), self.alive_window()),
        )?;
        let seen = crate::stats::liveness::Seen::of(&pk, &activity);
        let answer = crate::stats::liveness::service_liveness(now, &pk, seen, &slots, self.alive_window_secs)
            .ok_or_else(|| ApiError::NotFound(format!("no service {} has been seen", stats::hex(&pk))))?;
        json(&answer)
    }

    /// Every request kind ever used, and the ones never used.
    pub async fn kinds_usage(&self) -> ApiResult<Bytes> {
        let totals = entities::kind_totals(&self.ch).await?;
        json(&crate::stats::kinds_usage::kinds_usage(now_secs(), &totals))
    }

    fn alive_window(&self) -> u32 {
        clamp_u32(self.alive_window_secs)
    }

    pub async fn global(&self, range: TimeRange) -> ApiResult<Bytes> {
        let w = self.window(range);
        let (facts, buckets) = tokio::try_join!(
            window::facts(&self.ch, &w),
            window::series(&self.ch, &w, SeriesFilter::All)
        )?;
        json(&stats::global(&w, &facts, &buckets))
    }

    /// Distinct requests each DVM answered in the window, from the finalizer's pairs when the
    /// window is the ledger's.
    async fn jobs_answered(&self, w: &Window, from_ledger: bool) -> ApiResult<Vec<window::Answered>> {
        Ok(if from_ledger {
            ledger::jobs_answered(&self.ch, w).await?
        } else {
            window::jobs_answered(&self.ch, w).await?
        })
    }

    pub async fn dvm_list(&self, q: &ListQuery) -> ApiResult<Bytes> {
        let (w, from_ledger) = self.answered_window(q.range).await?;
        let (facts, directed, answered, (_, dir)) = tokio::try_join!(
            async { Ok(window::facts(&self.ch, &w).await?) },
            async { Ok(window::directed(&self.ch, &w).await?) },
            self.jobs_answered(&w, from_ledger),
            async { Ok(self.directory().await?) }
        )?;
        let mut all = stats::dvm_summaries(
            &w,
            &facts,
            &DvmExtras {
                directed: &directed,
                answered: &answered,
            },
            &dir,
        );
        if let Some(s) = &q.search {
            all.retain(|d| {
                d.id.contains(s.as_str())
                    || d.npub.contains(s.as_str())
                    || d.dvm_name
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase().contains(s.as_str()))
            });
        }
        sort_dvms(&mut all, q.sort, q.descending);
        let (dvms, total) = crate::stats::page(all, q.offset, q.limit);
        json(&DvmList {
            dvms,
            total,
            limit: q.limit,
            offset: q.offset,
            timestamp: dvmdash_core::dto::rfc3339(u64::from(w.now)),
        })
    }

    pub async fn dvm(&self, pk: Id32, range: TimeRange) -> ApiResult<Bytes> {
        let (w, from_ledger) = self.answered_window(range).await?;
        let (facts, directed, answered, (_, dir), buckets) = tokio::try_join!(
            async { Ok(window::facts(&self.ch, &w).await?) },
            async { Ok(window::directed(&self.ch, &w).await?) },
            self.jobs_answered(&w, from_ledger),
            async { Ok(self.directory().await?) },
            async { Ok(window::series(&self.ch, &w, SeriesFilter::Dvm(pk)).await?) }
        )?;
        if !dir.is_dvm(&pk) {
            return Err(ApiError::NotFound(format!(
                "no DVM {} has been seen",
                stats::hex(&pk)
            )));
        }
        let extras = DvmExtras {
            directed: &directed,
            answered: &answered,
        };
        json(&stats::dvm_stats(&w, &pk, &facts, &extras, &dir, &buckets))
    }

    async fn kind_directory(&self) -> clickhouse::error::Result<(KindDirectory, DvmDirectory)> {
        let (kinds, (activity, dir)) = tokio::try_join!(entities::kind_activity(&self.ch), self.directory())?;
        Ok((KindDirectory::new(&kinds, &activity, &dir), dir))
    }

    pub async fn kind_list(&self, q: &ListQuery) -> ApiResult<Bytes> {
        let w = self.window(q.range);
        let (facts, (kd, _)) = tokio::try_join!(window::facts(&self.ch, &w), self.kind_directory())?;
        let mut all = stats::kind_summaries(&facts, &kd);
        if let Some(s) = &q.search {
            all.retain(|k| {
                k.kind.to_string().contains(s.as_str())
                    || k.name
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase().contains(s.as_str()))
            });
        }
        sort_kinds(&mut all, q.sort, q.descending);
        let (kinds, total) = crate::stats::page(all, q.offset, q.limit);
        json(&KindList {
            kinds,
            total,
            limit: q.limit,
            offset: q.offset,
        })
    }

    pub async fn kind(&self, kind: u16, range: TimeRange) -> ApiResult<Bytes> {
        let w = self.window(range);
        let (facts, (kd, dir), buckets) = tokio::try_join!(
            window::facts(&self.ch, &w),
            self.kind_directory(),
            window::series(&self.ch, &w, SeriesFilter::Kind(kind))
        )?;
        if !kd.is_known(kind) {
            return Err(ApiError::NotFound(format!(
                "no request or result of kind {kind} has been seen"
            )));
        }
        json(&stats::kind_stats(&w, kind, &facts, &kd, &dir, &buckets))
    }

    pub async fn performance(&self, range: TimeRange, g: Grouping) -> ApiResult<Bytes> {
        let (w, from_ledger) = self.job_window(range).await?;
        let (ch, t) = (&self.ch, &self.timeouts);
        let (rows, errors, (_, dir)) = if from_ledger {
            tokio::try_join!(
                ledger::performance(ch, &w, t, g),
                ledger::top_errors(ch, &w, g),
                self.directory()
            )?
        } else {
            tokio::try_join!(
                jobs::performance(ch, &w, t, g),
                jobs::top_errors(ch, &w, t, g),
                self.directory()
            )?
        };
        json(&stats::jobs::performance(&w, g, &rows, &errors, &dir))
    }

    pub async fn reach(&self, range: TimeRange) -> ApiResult<Bytes> {
        let (w, from_ledger) = self.job_window(range).await?;
        let (ch, t) = (&self.ch, &self.timeouts);
        let (kinds, directed, (_, dir)) = if from_ledger {
            tokio::try_join!(
                ledger::kind_reach(ch, &w, t),
                ledger::directed_reach(ch, &w, t),
                self.directory()
            )?
        } else {
            tokio::try_join!(
                jobs::kind_reach(ch, &w, t),
                jobs::directed_reach(ch, &w, t),
                self.directory()
            )?
        };
        json(&stats::jobs::reach(&w, &kinds, &directed, &dir))
    }

    pub async fn competition(&self, range: TimeRange) -> ApiResult<Bytes> {
        let (w, from_ledger) = self.job_window(range).await?;
        let ((histogram, rows), (_, dir)) = if from_ledger {
            tokio::try_join!(ledger::competition(&self.ch, &w), self.directory())?
        } else {
            tokio::try_join!(jobs::competition(&self.ch, &w, &self.timeouts), self.directory())?
        };
        json(&stats::jobs::competition(&w, &histogram, &rows, &dir))
    }

    pub async fn prices(&self, range: TimeRange, by_kind: bool) -> ApiResult<Bytes> {
        let w = self.window(range);
        let (rows, (_, dir)) = tokio::try_join!(jobs::prices(&self.ch, &w, by_kind), self.directory())?;
        json(&stats::jobs::prices(&w, by_kind, &rows, &dir))
    }

    pub async fn payments(&self, range: TimeRange, by_kind: bool) -> ApiResult<Bytes> {
        let w = self.window(range);
        let (zaps, zapped, asks, request_kinds, (_, dir)) = tokio::try_join!(
            payments::zaps(&self.ch, &w),
            payments::zapped(&self.ch, &w),
            payments::asks(&self.ch, &w),
            payments::request_kinds(&self.ch, &w),
            self.directory()
        )?;
        let inputs = stats::payments::Inputs {
            zaps: &zaps,
            zapped: &zapped,
            asks: &asks,
            request_kinds: &request_kinds,
        };
        json(&stats::payments::payments(&w, by_kind, &inputs, &dir))
    }

    /// `seen_live_since`: when live watching of ContextVM messages began (read from Redis).
    pub async fn contextvm_traffic(
        &self,
        range: TimeRange,
        seen_live_since: Option<u64>,
    ) -> ApiResult<Bytes> {
        let w = self.window(range);
        let (messages, earlier, (_, dir)) = tokio::try_join!(
            contextvm::messages(&self.ch, &w),
            contextvm::earlier_calls(&self.ch, &w),
            self.directory()
        )?;
        json(&stats::contextvm::traffic(
            &w,
            seen_live_since,
            &messages,
            &earlier,
            &dir,
        ))
    }

    pub async fn relay_coverage(&self, range: TimeRange) -> ApiResult<Bytes> {
        let w = self.window(range);
        let (events, rows) = tokio::try_join!(
            coverage::distinct_events(&self.ch, &w),
            coverage::relay_events(&self.ch, &w)
        )?;
        json(&stats::coverage::coverage(&w, events, rows))
    }

    /// The relays a DVM's events appear on; 404 for a pubkey never seen as a DVM-like service.
    pub async fn dvm_relays(&self, pk: Id32) -> ApiResult<Bytes> {
        let (activity, rows) = tokio::try_join!(
            entities::service_activity(&self.ch),
            coverage::dvm_relays(&self.ch, &pk)
        )?;
        if !activity.iter().any(|a| a.pubkey == pk) {
            return Err(ApiError::NotFound(format!(
                "no service {} has been seen",
                stats::hex(&pk)
            )));
        }
        json(&stats::coverage::dvm_relays(now_secs(), &pk, rows))
    }

    pub async fn deviations(&self, range: TimeRange) -> ApiResult<Bytes> {
        let w = self.window(range);
        let (events, flags, others) = tokio::try_join!(
            quality::events(&self.ch, &w),
            quality::flag_counts(&self.ch, &w),
            quality::deletions_of_others(&self.ch, &w)
        )?;
        json(&stats::quality::deviations(&w, events, &flags, others))
    }

    pub async fn whats_new(&self, range: TimeRange) -> ApiResult<Bytes> {
        let w = self.window(range);
        let (kd, dir) = self.kind_directory().await?;
        json(&stats::whats_new(&w, &dir, &kd))
    }

    pub async fn history(&self) -> ApiResult<Bytes> {
        let (months, (top_dvms, top_kinds), (_, dir)) = tokio::try_join!(
            history::months(&self.ch),
            history::tops(&self.ch),
            self.directory()
        )?;
        json(&stats::jobs::history(&months, &top_dvms, &top_kinds, &dir))
    }
}

fn sort_dvms(v: &mut [DvmSummary], sort: &str, descending: bool) {
    v.sort_by(|a, b| {
        let ord = match sort {
            "total_events" => a.total_events.cmp(&b.total_events),
            "total_responses" => a.total_responses.cmp(&b.total_responses),
            "total_feedback" => a.total_feedback.cmp(&b.total_feedback),
            "total_requests" => a.total_requests.cmp(&b.total_requests),
            "name" => a
                .dvm_name
                .as_deref()
                .map(str::to_lowercase)
                .cmp(&b.dvm_name.as_deref().map(str::to_lowercase)),
            _ => a.last_seen.cmp(&b.last_seen),
        };
        let ord = if descending { ord.reverse() } else { ord };
        ord.then_with(|| a.id.cmp(&b.id))
    });
}

fn sort_kinds(v: &mut [KindSummary], sort: &str, descending: bool) {
    v.sort_by(|a, b| {
        let ord = match sort {
            "total_requests" => a.total_requests.cmp(&b.total_requests),
            "total_responses" => a.total_responses.cmp(&b.total_responses),
            "num_supporting_dvms" => a.num_supporting_dvms.cmp(&b.num_supporting_dvms),
            "kind" => a.kind.cmp(&b.kind),
            _ => a.last_seen.cmp(&b.last_seen),
        };
        let ord = if descending { ord.reverse() } else { ord };
        ord.then_with(|| a.kind.cmp(&b.kind))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_is_total_and_stable() {
        let mk = |id: &str, ev: u64| DvmSummary {
            id: id.into(),
            total_events: ev,
            ..Default::default()
        };
        let mut v = vec![mk("b", 1), mk("a", 1), mk("c", 5)];
        sort_dvms(&mut v, "total_events", true);
        assert_eq!(
            v.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["c", "a", "b"]
        );
        sort_dvms(&mut v, "total_events", false);
        assert_eq!(
            v.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }
}
