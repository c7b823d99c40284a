//! DVM display profiles from NIP-89 announcement content (kind 31990) and kind-0 metadata.
//!
//! Content is often sloppy (Python `True`, wrong field names): parse what parses, never fail.

use crate::dto::Profile;

fn text(v: &serde_json::Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|k| v.get(*k).and_then(|x| x.as_str()))
        .map(|s| crate::nip90::truncate(s.trim(), 1000).to_owned())
        .find(|s| !s.is_empty())
}

/// Reads a profile from JSON content; `None` when it is not a JSON object or holds nothing useful.
pub fn parse(content: &str, kind0: bool) -> Option<Profile> {
    let v: serde_json::Value = serde_json::from_str(content).ok()?;
    if !v.is_object() {
        return None;
    }
    let name_keys: &[&str] = if kind0 {
        &["display_name", "displayName", "name"]
    } else {
        &["name", "display_name"]
    };
    let p = Profile {
        name: text(&v, name_keys),
        about: text(&v, &["about", "description"]),
        picture: text(&v, &["picture", "image"]),
        encryption_supported: ["encryptionSupported", "supportsEncryption"]
            .iter()
            .find_map(|k| v.get(*k).and_then(|x| x.as_bool())),
    };
    (p.name.is_some() || p.about.is_some() || p.picture.is_some()).then_some(p)
}

/// Picks the profile to show: the newest announcement with a usable profile, else the newest kind-0
/// profile. `candidates` are (kind, created_at, content) of a DVM's current announcements and profile.
pub fn choose<'a>(candidates: impl IntoIterator<Item = (u16, u32, &'a str)>) -> Option<Profile> {
    let mut best: Option<(bool, u32, Profile)> = None;
    for (kind, created_at, content) in candidates {
        // Any family's announcement (31990, 11316, 11999) before the kind-0 profile.
        let is_announcement = crate::kinds::family(kind).is_some();
        let Some(p) = parse(content, !is_announcement) else {
            continue;
        };
        let better = match &best {
            None => true,
            Some((ann, at, _)) => (is_announcement, created_at) > (*ann, *at),
        };
        if better {
            best = Some((is_announcement, created_at, p));
        }
    }
    best.map(|(_, _, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dvm_and_kind0_fields() {
        let p = parse(
            r#"{"name":"Vertex","image":"https://x/p.png","supportsEncryption":true}"#,
            false,
        )
        .unwrap();
        assert_eq!(p.name.as_deref(), Some("Vertex"));
        assert_eq!(p.picture.as_deref(), Some("https://x/p.png"));
        assert_eq!(p.encryption_supported, Some(true));
        let k0 = parse(r#"{"name":"bot","display_name":"Nice Bot","about":"hi"}"#, true).unwrap();
        assert_eq!(k0.name.as_deref(), Some("Nice Bot"));
        assert_eq!(parse("{name: True}", false), None);
        assert_eq!(parse("[1,2]", false), None);
        assert_eq!(parse(r#"{"name":"  "}"#, false), None);
    }

    #[test]
    fn announcements_win_over_kind0_and_newer_wins() {
        let chosen = choose([
            (0, 300, r#"{"name":"from kind 0"}"#),
            (31990, 100, r#"{"name":"old announcement"}"#),
            (31990, 200, r#"{"name":"new announcement"}"#),
            (31990, 250, "{broken"),
        ])
        .unwrap();
        assert_eq!(chosen.name.as_deref(), Some("new announcement"));
        let fallback = choose([(31990, 100, ""), (0, 50, r#"{"name":"k0"}"#)]).unwrap();
        assert_eq!(fallback.name.as_deref(), Some("k0"));
        assert_eq!(choose([]), None);
    }
}
