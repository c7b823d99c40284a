//! Formatting helpers, kept free of browser APIs so they are tested on the host.

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

/// Shortens a hex pubkey for display: `abcdef12…7890`.
pub fn short_key(hex: &str) -> String {
    if hex.len() <= 16 {
        hex.to_owned()
    } else {
        format!("{}…{}", &hex[..8], &hex[hex.len() - 4..])
    }
}

/// The label of a bucket start (`2026-11-24T12:00:00Z`) for a chart axis: time for short windows,
/// date for long ones, always UTC.
pub fn bucket_label(rfc3339: &str, long_window: bool) -> String {
    let (date, time) = rfc3339.split_once('T').unwrap_or((rfc3339, ""));
    if long_window {
        date.get(5..).unwrap_or(date).to_owned()
    } else {
        time.get(..5).unwrap_or(time).to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(completion_rate(0, 5), "–");
        assert_eq!(completion_rate(200, 150), "75.0%");
        assert_eq!(short_key(&"ab".repeat(32)), "abababab…abab");
        assert_eq!(bucket_label("2026-11-24T12:05:00Z", false), "12:05");
        assert_eq!(bucket_label("2026-11-24T00:00:00Z", true), "11-24");
    }
}
