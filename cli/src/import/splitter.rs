//! Splits a byte stream into the top-level JSON objects it holds, without parsing them: DVMDash's
//! archives (one JSON array of events, gigabytes long) and JSON Lines both come out as one object
//! at a time, in constant memory. Each object's bytes go to the validator as they are.

/// One top-level element, or why it could not be taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Element {
    /// The bytes of a JSON object, and the stream offset just after it.
    Object { bytes: Vec<u8>, end: u64 },
    /// Something that is not an object (a stray token), skipped up to the next object.
    Junk { end: u64 },
    /// An object larger than the limit; its bytes were dropped.
    TooLarge { end: u64 },
}

#[derive(Debug)]
pub struct Splitter {
    max_bytes: usize,
    depth: u32,
    in_string: bool,
    escape: bool,
    oversized: bool,
    junk: bool,
    buf: Vec<u8>,
    /// Offset of the next byte to be pushed.
    offset: u64,
}

impl Splitter {
    /// Starts at `offset` (a resumed file starts just after an element).
    pub fn new(max_bytes: usize, offset: u64) -> Self {
        Splitter {
            max_bytes,
            depth: 0,
            in_string: false,
            escape: false,
            oversized: false,
            junk: false,
            buf: Vec::new(),
            offset,
        }
    }

    /// Feeds bytes; complete elements are appended to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Element>) {
        for &b in chunk {
            self.offset += 1;
            if self.depth == 0 {
                match b {
                    b'{' => {
                        if self.junk {
                            self.junk = false;
                            out.push(Element::Junk { end: self.offset - 1 });
                        }
                        self.depth = 1;
                        self.buf.clear();
                        self.buf.push(b);
                        self.oversized = false;
                    }
                    // Array brackets, separators and whitespace between elements.
                    b'[' | b']' | b',' | b' ' | b'\n' | b'\r' | b'\t' => {
                        if self.junk && matches!(b, b',' | b'\n' | b']') {
                            self.junk = false;
                            out.push(Element::Junk { end: self.offset });
                        }
                    }
                    _ => self.junk = true,
                }
                continue;
            }
            if !self.oversized {
                if self.buf.len() >= self.max_bytes {
                    self.oversized = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.push(b);
                }
            }
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        let end = self.offset;
                        if self.oversized {
                            out.push(Element::TooLarge { end });
                        } else {
                            out.push(Element::Object {
                                bytes: std::mem::take(&mut self.buf),
                                end,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// At the end of input: whether an element was left unfinished (truncated input).
    pub fn finish(&mut self, out: &mut Vec<Element>) -> bool {
        if self.junk {
            self.junk = false;
            out.push(Element::Junk { end: self.offset });
        }
        self.depth > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &[u8], chunk: usize) -> (Vec<Element>, bool) {
        let mut s = Splitter::new(1000, 0);
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            s.push(c, &mut out);
        }
        let truncated = s.finish(&mut out);
        (out, truncated)
    }

    fn objects(els: &[Element]) -> Vec<String> {
        els.iter()
            .filter_map(|e| match e {
                Element::Object { bytes, .. } => Some(String::from_utf8_lossy(bytes).into_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn arrays_and_lines_in_any_chunking() {
        let array = br#"[ {"a":"x}{"}, {"b":{"c":[1,2,"]"]}}
        ,{"d":"\"}"} ]"#;
        let lines = b"{\"a\":1}\n{\"b\":\"\\\\\"}\r\n\n{\"c\":[]}\n";
        for chunk in [1, 2, 3, 7, 1000] {
            let (els, truncated) = split(array, chunk);
            assert!(!truncated);
            assert_eq!(
                objects(&els),
                vec![r#"{"a":"x}{"}"#, r#"{"b":{"c":[1,2,"]"]}}"#, r#"{"d":"\"}"}"#]
            );
            let (els, _) = split(lines, chunk);
            assert_eq!(objects(&els), vec![r#"{"a":1}"#, r#"{"b":"\\"}"#, r#"{"c":[]}"#]);
        }
    }

    #[test]
    fn offsets_allow_resuming() {
        let input = br#"[{"a":1},{"b":2},{"c":3}]"#;
        let (els, _) = split(input, 4);
        let Element::Object { end, .. } = &els[0] else {
            panic!()
        };
        let mut s = Splitter::new(1000, *end);
        let mut out = Vec::new();
        s.push(&input[*end as usize..], &mut out);
        assert_eq!(objects(&out), vec![r#"{"b":2}"#, r#"{"c":3}"#]);
    }

    #[test]
    fn junk_oversize_and_truncation() {
        let (els, truncated) = split(b"[1, {\"a\":1}, \"str\", {\"b\":2}", 3);
        assert_eq!(
            els.iter().filter(|e| matches!(e, Element::Junk { .. })).count(),
            2
        );
        assert_eq!(objects(&els).len(), 2);
        assert!(!truncated);
        let big = format!("[{{\"x\":\"{}\"}},{{\"y\":1}}]", "z".repeat(5000));
        let (els, _) = split(big.as_bytes(), 64);
        assert!(matches!(els[0], Element::TooLarge { .. }));
        assert_eq!(objects(&els), vec![r#"{"y":1}"#]);
        let (_, truncated) = split(b"[{\"a\":", 2);
        assert!(truncated);
    }
}
