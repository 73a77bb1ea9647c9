//! `WWW-Authenticate: Bearer …` challenges (RFC 6750 §3, RFC 9728 §5.1).

/// The parameters of a Bearer challenge this sidecar uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    /// RFC 6750 §3: `invalid_token`, `insufficient_scope`, …
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// Space-separated scopes the resource wants (RFC 6750 §3).
    pub scope: Option<String>,
    /// RFC 9728 §5.1: where the protected-resource metadata is.
    pub resource_metadata: Option<String>,
}

impl BearerChallenge {
    pub fn scopes(&self) -> Vec<String> {
        split_scopes(self.scope.as_deref())
    }

    pub fn is_insufficient_scope(&self) -> bool {
        self.error.as_deref() == Some("insufficient_scope")
    }
}

pub fn split_scopes(scope: Option<&str>) -> Vec<String> {
    scope
        .map(|s| {
            s.split(' ')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Parses the Bearer challenge out of a `WWW-Authenticate` value, which may
/// list several schemes (`Basic realm="x", Bearer scope="a b"`). Returns
/// `None` when there is no Bearer challenge. Parameters of several Bearer
/// challenges are merged; a repeated parameter keeps its last value.
///
/// The value comes from any server the user configured, so this never
/// fails and never recurses: one forward pass over the bytes.
pub fn parse(header: &str) -> Option<BearerChallenge> {
    let mut lexer = Lexer { s: header, pos: 0 };
    let mut in_bearer = false;
    let mut found = false;
    let mut out = BearerChallenge::default();
    while let Some(item) = lexer.next_item() {
        match item {
            Item::Scheme(name) => {
                in_bearer = name.eq_ignore_ascii_case("bearer");
                found |= in_bearer;
            }
            Item::Param(key, value) if in_bearer => {
                let slot = if key.eq_ignore_ascii_case("error") {
                    &mut out.error
                } else if key.eq_ignore_ascii_case("error_description") {
                    &mut out.error_description
                } else if key.eq_ignore_ascii_case("scope") {
                    &mut out.scope
                } else if key.eq_ignore_ascii_case("resource_metadata") {
                    &mut out.resource_metadata
                } else {
                    continue;
                };
                *slot = Some(value);
            }
            Item::Param(..) | Item::Token68 => {}
        }
    }
    found.then_some(out)
}

enum Item<'a> {
    /// `auth-scheme`: starts a challenge.
    Scheme(&'a str),
    /// `auth-param` of the current challenge, value unquoted.
    Param(&'a str, String),
    /// A scheme's `token68` credentials (unused by Bearer).
    Token68,
}

/// The RFC 9110 §11.6.1 grammar, as lenient tokens over one forward pass:
///
/// ```text
/// WWW-Authenticate = #challenge
/// challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
/// auth-param = token BWS "=" BWS ( token / quoted-string )
/// token68    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
/// ```
///
/// `#` lists (§5.6.1) allow empty elements (`a, , b`). A token followed by
/// `=` is a parameter name, any other token a scheme. Unquoted values are
/// read up to the next comma or whitespace (servers send unquoted URLs). An
/// element that fits nothing is skipped up to the next comma outside a
/// quoted-string. Every call consumes at least one byte or ends the input,
/// and no byte is looked at more than a few times: time is linear.
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// Advances while `keep` holds and returns what was passed over. Each
    /// `keep` here passes only ASCII bytes or stops only at ASCII bytes, so
    /// the slice ends on a char boundary.
    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// OWS / BWS (RFC 9110 §5.6.3).
    fn skip_ws(&mut self) {
        self.take_while(|b| b == b' ' || b == b'\t');
    }

    fn next_item(&mut self) -> Option<Item<'a>> {
        loop {
            // Empty list elements and the separators between elements.
            self.take_while(|b| b == b' ' || b == b'\t' || b == b',');
            self.peek()?;
            let word = self.take_while(is_tchar);
            if word.is_empty() {
                // Not a token where one must be (a stray `=`, a quote, a
                // non-ASCII byte): drop this list element.
                self.skip_element();
                continue;
            }
            let after_word = self.pos;
            self.skip_ws();
            if self.peek() == Some(b'=') {
                self.pos += 1;
                self.skip_ws();
                match self.peek() {
                    Some(b'"') => {
                        self.pos += 1;
                        return Some(Item::Param(word, self.quoted_string()));
                    }
                    Some(b) if !matches!(b, b',' | b'=') => {
                        let value = self.take_while(|b| !matches!(b, b',' | b' ' | b'\t'));
                        return Some(Item::Param(word, value.to_owned()));
                    }
                    // `abc=`, `abc==`, `abc=,`: token68 padding. With space
                    // before the `=`, `word` is a scheme and the `=` junk.
                    _ if self.s.as_bytes().get(after_word) == Some(&b'=') => {
                        self.pos = after_word;
                        self.take_while(|b| b == b'=');
                        return Some(Item::Token68);
                    }
                    _ => {}
                }
            }
            self.pos = after_word;
            return Some(Item::Scheme(word));
        }
    }

    /// The rest of a quoted-string (RFC 9110 §5.6.4) after its opening
    /// quote, unescaped. An unterminated one ends at the end of the input.
    fn quoted_string(&mut self) -> String {
        let mut out = String::new();
        loop {
            let chunk = self.take_while(|b| b != b'"' && b != b'\\');
            out.push_str(chunk);
            match self.peek() {
                None => return out,
                Some(b'"') => {
                    self.pos += 1;
                    return out;
                }
                Some(_) => {
                    // quoted-pair: the escaped character, whole.
                    self.pos += 1;
                    if let Some(c) = self.s[self.pos..].chars().next() {
                        out.push(c);
                        self.pos += c.len_utf8();
                    }
                }
            }
        }
    }

    /// Skips to the next comma that is not inside a quoted-string.
    fn skip_element(&mut self) {
        loop {
            self.take_while(|b| b != b',' && b != b'"');
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    self.quoted_string();
                }
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_params_among_other_schemes() {
        let c = parse(r#"Basic realm="x", Bearer error="insufficient_scope", scope="mcp:write files:read", resource_metadata="https://r.example/.well-known/oauth-protected-resource/mcp", error_description="need \"more\""#).unwrap();
        assert!(c.is_insufficient_scope());
        assert_eq!(c.scopes(), vec!["mcp:write", "files:read"]);
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("https://r.example/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(c.error_description.as_deref(), Some("need \"more\""));
    }

    #[test]
    fn tolerates_odd_input() {
        assert_eq!(parse("Bearer").unwrap(), BearerChallenge::default());
        assert_eq!(parse("bearer scope=a").unwrap().scope.as_deref(), Some("a"));
        assert!(parse("Basic realm=x").is_none());
        assert!(parse("").is_none());
        assert!(parse("Bearer abc==, x=\"unterminated").is_some());
        assert!(parse("=,=,==\"").is_none());
    }

    /// A small deterministic PRNG (SplitMix64): the same cases every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    /// Runs of every ASCII punctuation character (and of whitespace), alone
    /// and after `Bearer `, up to 1 MB: each parses without panicking. A
    /// parser that recursed or rescanned per character would overflow its
    /// stack or not finish (1 MB squared is 10^12 steps).
    #[test]
    fn long_runs_of_every_punctuation_character_parse() {
        let mut cases = 0;
        for c in PUNCTUATION.chars().chain([' ', '\t']) {
            for len in [1, 2, 3, 60_000, 1 << 20] {
                let run = c.to_string().repeat(len);
                for header in [
                    run.clone(),
                    format!("Bearer {run}"),
                    format!("{run}Bearer {run}"),
                ] {
                    let _ = parse(&header);
                    cases += 1;
                }
            }
        }
        // Two-character alternations hit the list and parameter states.
        for pair in ["=,", ",=", "=\"", "\"=", "\\\"", "a=", "a=\"", "= ", ", "] {
            let _ = parse(&format!("Bearer {}", pair.repeat(1 << 19)));
            cases += 1;
        }
        assert_eq!(cases, 34 * 5 * 3 + 9);
    }

    #[test]
    fn sixty_thousand_equals_signs_are_a_bearer_challenge() {
        let c = parse(&format!("Bearer {}", "=".repeat(60_000)));
        assert_eq!(c, Some(BearerChallenge::default()));
    }

    /// A 1 MB header whose parameters all matter is read completely.
    #[test]
    fn a_one_megabyte_header_is_read_to_its_end() {
        let filler = "x=\"y\", ".repeat((1 << 20) / 7);
        let header = format!("Bearer {filler}scope=\"last\"");
        assert!(header.len() >= 1 << 20);
        assert_eq!(parse(&header).unwrap().scope.as_deref(), Some("last"));
    }

    /// Random bytes (lossily decoded) and random strings over the grammar's
    /// own alphabet: no panic, whatever the input.
    #[test]
    fn random_inputs_never_panic() {
        let mut rng = Rng(0x5EED_0008);
        let pieces = [
            "Bearer",
            "bearer",
            "Basic",
            "scope",
            "error",
            "resource_metadata",
            "=",
            "==",
            ",",
            ", ",
            " ",
            "\t",
            "\"",
            "\\",
            "\\\"",
            "a",
            "é",
            "\u{0}",
            "realm",
            "token68+/~",
        ];
        for _ in 0..20_000 {
            let len = rng.below(64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
        for _ in 0..20_000 {
            let header: String = (0..rng.below(24)).map(|_| rng.pick(&pieces)).collect();
            let _ = parse(&header);
        }
        for _ in 0..20_000 {
            let len = rng.below(48);
            let header: String = (0..len)
                .map(|_| PUNCTUATION.as_bytes()[rng.below(PUNCTUATION.len())] as char)
                .collect();
            let _ = parse(&header);
        }
    }

    /// Well-formed challenges (RFC 9110 §11.6.1) built at random, with
    /// other schemes, empty list elements, BWS and quoted-pairs around them:
    /// the Bearer parameters come back exactly.
    #[test]
    fn random_well_formed_challenges_round_trip() {
        let mut rng = Rng(0xC0FF_EE08);
        let tokens = [
            "a",
            "mcp:read",
            "x-y_z.1~",
            "insufficient_scope",
            "!#$%&'*+-.^_`|~",
        ];
        let texts = [
            "",
            "plain",
            "with space",
            "quote\"inside",
            "back\\slash",
            "comma, here",
            "é",
        ];
        for case in 0..20_000 {
            let mut expected = BearerChallenge::default();
            let mut params = Vec::new();
            for key in [
                "error",
                "error_description",
                "scope",
                "resource_metadata",
                "realm",
            ] {
                if rng.below(2) == 0 {
                    continue;
                }
                let (written, value) = if rng.below(2) == 0 && key != "error_description" {
                    let t = rng.pick(&tokens);
                    (t.to_owned(), t.to_owned())
                } else {
                    let t = rng.pick(&texts);
                    let escaped = t.replace('\\', "\\\\").replace('"', "\\\"");
                    (format!("\"{escaped}\""), t.to_owned())
                };
                let eq = rng.pick(&["=", " =", "= ", " = "]);
                params.push(format!("{}{eq}{written}", key.to_uppercase()));
                match key {
                    "error" => expected.error = Some(value),
                    "error_description" => expected.error_description = Some(value),
                    "scope" => expected.scope = Some(value),
                    "resource_metadata" => expected.resource_metadata = Some(value),
                    _ => {}
                }
            }
            let sep = || [",", ", ", " , ", ",,", ", ,\t,"][case % 5];
            let mut bearer = rng.pick(&["Bearer", "bearer", "BEARER"]).to_owned();
            if !params.is_empty() {
                bearer = format!("{bearer} {}", params.join(sep()));
            }
            let before = rng.pick(&["", "Basic realm=\"x, y\"", "Basic dXNlcjpwYXNz==", "Other"]);
            let after = rng.pick(&["", "Basic abc=", "Digest realm=\"r\", nonce=\"n\""]);
            let header = [before, bearer.as_str(), after]
                .iter()
                .filter(|p| !p.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(sep());
            assert_eq!(parse(&header), Some(expected), "case {case}: {header}");
        }
    }
}
