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
/// `None` when there is no Bearer challenge.
pub fn parse(header: &str) -> Option<BearerChallenge> {
    let mut tokens = Lexer { rest: header };
    let mut in_bearer = false;
    let mut found = false;
    let mut out = BearerChallenge::default();
    while let Some(item) = tokens.next_item() {
        match item {
            Item::Scheme(name) => {
                in_bearer = name.eq_ignore_ascii_case("bearer");
                found |= in_bearer;
            }
            Item::Param(key, value) if in_bearer => match key.to_ascii_lowercase().as_str() {
                "error" => out.error = Some(value),
                "error_description" => out.error_description = Some(value),
                "scope" => out.scope = Some(value),
                "resource_metadata" => out.resource_metadata = Some(value),
                _ => {}
            },
            Item::Param(..) => {}
        }
    }
    found.then_some(out)
}

enum Item {
    Scheme(String),
    Param(String, String),
}

struct Lexer<'a> {
    rest: &'a str,
}

impl Lexer<'_> {
    fn skip(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t', ',']);
    }

    fn next_item(&mut self) -> Option<Item> {
        self.skip();
        if self.rest.is_empty() {
            return None;
        }
        let end = self
            .rest
            .find([' ', '\t', ',', '='])
            .unwrap_or(self.rest.len());
        let word = self.rest[..end].to_owned();
        self.rest = &self.rest[end..];
        let after = self.rest.trim_start_matches([' ', '\t']);
        // `key=value` (but not a token68 such as `abc==`).
        if let Some(v) = after.strip_prefix('=').filter(|v| !v.starts_with('=')) {
            let v = v.trim_start_matches([' ', '\t']);
            let (value, rest) = if let Some(quoted) = v.strip_prefix('"') {
                read_quoted(quoted)
            } else {
                let end = v.find([',', ' ', '\t']).unwrap_or(v.len());
                (v[..end].to_owned(), &v[end..])
            };
            self.rest = rest;
            return Some(Item::Param(word, value));
        }
        if word.is_empty() {
            // A stray `=`: skip it.
            self.rest = &self.rest[1.min(self.rest.len())..];
            return self.next_item();
        }
        Some(Item::Scheme(word))
    }
}

/// Reads a quoted-string body (RFC 9110 §5.6.4) after the opening quote.
fn read_quoted(s: &str) -> (String, &str) {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, n)) = chars.next() {
                    out.push(n);
                }
            }
            '"' => return (out, &s[i + 1..]),
            c => out.push(c),
        }
    }
    (out, "")
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
}
