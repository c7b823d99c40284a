//! Number, time and key formatting, kept free of browser APIs so it is tested on the host.
//! Every time shown is UTC and says so.

use dvmdash_core::dto::TimeRange;

/// Shared with the server's link previews.
pub use dvmdash_core::fmt::clip;

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    dvmdash_core::fmt::group_digits(n, ',')
}

/// Responses per request as a percentage with one decimal, or a dash when there were no requests.
pub fn completion_rate(requests: u64, responses: u64) -> String {
    if requests == 0 {
        "–".to_owned()
    } else {
        format!("{:.1}%", responses as f64 * 100.0 / requests as f64)
    }
}

/// A share in `0..=1` as a percentage with one decimal; a dash when unknown.
pub fn percent(share: Option<f64>) -> String {
    match share {
        Some(s) if s.is_finite() => format!("{:.1}%", s * 100.0),
        _ => "–".to_owned(),
    }
}

/// A latency in seconds: `0.4` -> `400 ms`, `12.3` -> `12.3 s`, `185` -> `3 min 5 s`.
pub fn duration(secs: Option<f64>) -> String {
    let Some(s) = secs.filter(|s| s.is_finite() && *s >= 0.0) else {
        return "–".to_owned();
    };
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        let s = s.round() as u64;
        format!("{} min {} s", s / 60, s % 60)
    } else {
        let m = (s / 60.0).round() as u64;
        format!("{} h {} min", m / 60, m % 60)
    }
}

/// Bytes in binary units: `512` -> `512 B`, `1536` -> `1.5 KiB`, `3221225472` -> `3.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Millisatoshis as people read prices: `500` -> `500 msat`, `21000` -> `21 sats`,
/// `1500000` -> `1,500 sats`.
pub fn msat(m: u64) -> String {
    if m < 1000 {
        format!("{m} msat")
    } else if m.is_multiple_of(1000) {
        format!("{} sats", thousands(m / 1000))
    } else {
        let n = format!("{:.3}", m as f64 / 1000.0);
        format!("{} sats", n.trim_end_matches('0'))
    }
}

/// Shortens an npub: `npub1abcdefgh…uvwxyz`.
pub fn short_npub(npub: &str) -> String {
    if npub.chars().count() <= 24 {
        npub.to_owned()
    } else {
        let head: String = npub.chars().take(13).collect();
        let tail: String = npub
            .chars()
            .rev()
            .take(6)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("{head}…{tail}")
    }
}

/// Unix seconds of an api timestamp (`2026-11-24T12:05:00Z`), or `None` when it is not one.
pub use dvmdash_core::dto::parse_rfc3339 as parse_time;

/// How long ago an api timestamp was, relative to `now` (unix seconds): `just now`, `5 min ago`,
/// `3 h ago`, `12 d ago`.
pub fn ago(rfc3339: &str, now: u64) -> String {
    let Some(t) = parse_time(rfc3339) else {
        return "–".to_owned();
    };
    let d = now.saturating_sub(t);
    match d {
        0..=59 => "just now".to_owned(),
        60..=3599 => format!("{} min ago", d / 60),
        3600..=86_399 => format!("{} h ago", d / 3600),
        _ => format!("{} d ago", d / 86_400),
    }
}

/// An api timestamp as people read it, with its zone: `2026-11-24 12:05 UTC`.
pub fn utc(rfc3339: &str) -> String {
    match (rfc3339.get(0..10), rfc3339.get(11..16)) {
        (Some(date), Some(time)) if parse_time(rfc3339).is_some() => format!("{date} {time} UTC"),
        _ => rfc3339.to_owned(),
    }
}

/// The window in words: `last 24 hours`.
pub fn window_words(range: TimeRange) -> &'static str {
    match range {
        TimeRange::Hour => "last hour",
        TimeRange::Day => "last 24 hours",
        TimeRange::Week => "last 7 days",
        TimeRange::Month => "last 30 days",
    }
}

/// A kind with its registry name when known: `5300 · Nostr Content Discovery`.
pub fn kind_label(kind: u16) -> String {
    match dvmdash_core::kinds::kind_name(kind) {
        Some(name) => format!("{kind} · {name}"),
        None => kind.to_string(),
    }
}

/// Initials for an avatar without a picture: `Vertex DVM` -> `VD`, none -> `?`.
pub fn initials(name: Option<&str>) -> String {
    let s: String = name
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|w| w.chars().find(|c| c.is_alphanumeric()))
        .take(2)
        .flat_map(char::to_uppercase)
        .collect();
    if s.is_empty() { "?".to_owned() } else { s }
}

/// Running totals, for the charts' cumulative view.
pub fn cumulative(values: &[u64]) -> Vec<u64> {
    values
        .iter()
        .scan(0u64, |acc, v| {
            *acc = acc.saturating_add(*v);
            Some(*acc)
        })
        .collect()
}

/// Only web images may be shown as pictures (no `javascript:` or `data:` URLs from profiles).
pub fn safe_image(url: Option<&str>) -> Option<&str> {
    url.map(str::trim)
        .filter(|u| (u.starts_with("https://") || u.starts_with("http://")) && u.len() <= 2048)
}

/// Sorted kinds as runs: `5003–5049, 5051, 5053–5099`.
pub fn kind_ranges(kinds: &[u16]) -> String {
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for &k in kinds {
        match runs.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(k) => *end = k,
            _ => runs.push((k, k)),
        }
    }
    runs.iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}–{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {

    #[test]
    fn bytes_in_binary_units() {
        assert_eq!(super::bytes(0), "0 B");
        assert_eq!(super::bytes(1023), "1023 B");
        assert_eq!(super::bytes(1536), "1.5 KiB");
        assert_eq!(super::bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(super::bytes(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn kinds_as_runs() {
        assert_eq!(kind_ranges(&[]), "");
        assert_eq!(
            kind_ranges(&[5000, 5001, 5002, 5004, 5006, 5007]),
            "5000–5002, 5004, 5006–5007"
        );
        assert_eq!(kind_ranges(&[65534, 65535]), "65534–65535");
    }

    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(completion_rate(0, 5), "–");
        assert_eq!(completion_rate(200, 150), "75.0%");
        assert_eq!(percent(Some(0.9234)), "92.3%");
        assert_eq!(percent(None), "–");
        assert_eq!(percent(Some(f64::NAN)), "–");
    }

    #[test]
    fn durations_and_prices() {
        assert_eq!(duration(Some(0.4)), "400 ms");
        assert_eq!(duration(Some(12.34)), "12.3 s");
        assert_eq!(duration(Some(185.0)), "3 min 5 s");
        assert_eq!(duration(Some(7260.0)), "2 h 1 min");
        assert_eq!(duration(None), "–");
        assert_eq!(duration(Some(-1.0)), "–");
        assert_eq!(msat(500), "500 msat");
        assert_eq!(msat(21_000), "21 sats");
        assert_eq!(msat(1_500_000), "1,500 sats");
        assert_eq!(msat(1_500), "1.5 sats");
    }

    #[test]
    fn keys_and_names() {
        assert_eq!(
            short_npub("npub1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqxyzxyz"),
            "npub1qqqqqqqq…xyzxyz"
        );
        assert_eq!(short_npub("npub1short"), "npub1short");
        assert_eq!(initials(Some("Vertex DVM")), "VD");
        assert_eq!(initials(Some("  ")), "?");
        assert_eq!(initials(Some("<script>")), "S");
        assert_eq!(initials(None), "?");
        assert_eq!(kind_label(5300), "5300 · Nostr Content Discovery");
        assert_eq!(kind_label(5742), "5742");
        assert_eq!(safe_image(Some("javascript:alert(1)")), None);
        assert_eq!(safe_image(Some(" https://x/p.png ")), Some("https://x/p.png"));
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_time("2023-11-14 22:13:20"), None);
        assert_eq!(parse_time("2023-13-14T22:13:20Z"), None);
        assert_eq!(parse_time(""), None);
        assert_eq!(ago("2023-11-14T22:13:20Z", 1_700_000_030), "just now");
        assert_eq!(ago("2023-11-14T22:13:20Z", 1_700_000_000 + 3 * 3600), "3 h ago");
        assert_eq!(ago("2023-11-14T22:13:20Z", 1_700_000_000 + 5 * 86_400), "5 d ago");
        assert_eq!(ago("garbage", 0), "–");
        assert_eq!(utc("2026-11-24T12:05:00Z"), "2026-11-24 12:05 UTC");
        assert_eq!(cumulative(&[1, 2, 3]), vec![1, 3, 6]);
    }
}
