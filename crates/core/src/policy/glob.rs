//! Glob patterns of the policy: `*` matches any run of characters (`/` included: tool names
//! have no path structure, and a resource URI pattern like `file:///srv/*` means the whole
//! tree), `?` exactly one; everything else matches itself. Compiled once at load.

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    text: Box<str>,
    /// No wildcard: compared as a string.
    literal: bool,
}

impl Glob {
    pub(crate) fn new(text: &str) -> Self {
        Self { text: text.into(), literal: !text.contains(['*', '?']) }
    }

    /// Whether it has no wildcard.
    pub(crate) fn is_literal(&self) -> bool {
        self.literal
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        if self.literal {
            return *self.text == *name;
        }
        wildcard(self.text.as_bytes(), name.as_bytes())
    }
}

/// Iterative matching with one backtrack point (the last `*`): linear for the patterns
/// operators write, never exponential.
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            // `?` is one character, not one byte.
            Some(b'?') => {
                p += 1;
                t += utf8_len(text[t]);
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    let next = st + utf8_len(text[st]);
                    star = Some((sp, next));
                    t = next;
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).matches(t)
    }

    #[test]
    fn stars_questions_and_literals() {
        assert!(m("*", ""));
        assert!(m("*", "anything/at all"));
        assert!(m("read_*", "read_file"));
        assert!(!m("read_*", "write_file"));
        assert!(m("*_file", "read_file"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("file:///srv/*", "file:///srv/a/b.txt"));
        assert!(m("ech?", "echo"));
        assert!(m("é?", "éé"));
        assert!(!m("ech?", "ech"));
        assert!(m("echo", "echo"));
        assert!(!m("echo", "echo2"));
        assert!(m("**x", "abx"));
    }
}
