//! Redis's glob matcher (`stringmatchlen` in util.c), for KEYS and CONFIG GET: `*` any run,
//! `?` one byte, `[abc]`, `[^a]`, `[a-z]` (either order), `\x` a literal `x`. Recursion on `*`
//! is bounded: Redis 7.0 limits nesting too (`nesting > 1000` fails the match).

/// Whether `s` matches `pat`.
pub fn matches(pat: &[u8], s: &[u8], nocase: bool) -> bool {
    let mut skip_longer = false;
    match_at(pat, s, nocase, &mut skip_longer, 0)
}

fn lower(c: u8, nocase: bool) -> u8 {
    if nocase { c.to_ascii_lowercase() } else { c }
}

fn match_at(pat: &[u8], s: &[u8], nocase: bool, skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > 1000 {
        return false;
    }
    let (mut p, mut i) = (0usize, 0usize);
    while p < pat.len() && i < s.len() {
        match pat[p] {
            b'*' => {
                while p + 1 < pat.len() && pat[p + 1] == b'*' {
                    p += 1;
                }
                if p + 1 == pat.len() {
                    return true;
                }
                for j in i..s.len() {
                    if match_at(&pat[p + 1..], &s[j..], nocase, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                }
                *skip_longer = true;
                return false;
            }
            b'?' => i += 1,
            b'[' => {
                p += 1;
                let not = p < pat.len() && pat[p] == b'^';
                if not {
                    p += 1;
                }
                let mut hit = false;
                loop {
                    let rem = pat.len() - p;
                    if rem >= 2 && pat[p] == b'\\' {
                        p += 1;
                        if pat[p] == s[i] {
                            hit = true;
                        }
                    } else if rem >= 1 && pat[p] == b']' {
                        break;
                    } else if rem == 0 {
                        // Unterminated class: Redis steps back so the pattern ends here.
                        p -= 1;
                        break;
                    } else if rem >= 3 && pat[p + 1] == b'-' {
                        let (mut a, mut b) = (pat[p], pat[p + 2]);
                        if a > b {
                            core::mem::swap(&mut a, &mut b);
                        }
                        let (a, b, c) = (lower(a, nocase), lower(b, nocase), lower(s[i], nocase));
                        p += 2;
                        if c >= a && c <= b {
                            hit = true;
                        }
                    } else if lower(pat[p], nocase) == lower(s[i], nocase) {
                        hit = true;
                    }
                    p += 1;
                }
                if hit == not {
                    return false;
                }
                i += 1;
            }
            c => {
                let c = if c == b'\\' && p + 1 < pat.len() {
                    p += 1;
                    pat[p]
                } else {
                    c
                };
                if lower(c, nocase) != lower(s[i], nocase) {
                    return false;
                }
                i += 1;
            }
        }
        p += 1;
        if i == s.len() {
            while p < pat.len() && pat[p] == b'*' {
                p += 1;
            }
            break;
        }
    }
    p == pat.len() && i == s.len()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn glob_forms() {
        let m = |p: &str, s: &str| matches(p.as_bytes(), s.as_bytes(), false);
        // As stringmatchlen: the empty string matches no non-empty pattern (KEYS * special-cases).
        assert!(!m("*", ""));
        assert!(m("*", "abc"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "abbb"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("**a", "ba"));
        assert!(m("a*", "a"));
        assert!(!m("", "a"));
        assert!(m("", ""));
        assert!(matches(b"A*", b"abc", true));
    }
}
