//! Small formatting helpers shared by the UI and the server side.

/// Groups digits by thousands: `group_digits(1234567, ',')` is `1,234,567`.
pub fn group_digits(n: u64, sep: char) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups() {
        assert_eq!(group_digits(0, ','), "0");
        assert_eq!(group_digits(999, ','), "999");
        assert_eq!(group_digits(1000, '_'), "1_000");
        assert_eq!(group_digits(1234567, ','), "1,234,567");
    }
}
