//! A value that must never be shown: client secrets, tokens, assertions, SAS strings, keys.
//!
//! `Secret` exists so that leaking takes effort: its `Debug` and `Display` print `***`, so a
//! secret inside a struct, an error or a log line is masked by default. Reading it takes an
//! explicit [`Secret::expose`]. The reporter also learns every secret value (so that CI masks
//! it too); that registration lives in `report`, not here.

use std::fmt;

/// A string that prints as `***` everywhere; [`Secret::expose`] is the only way to read it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value; from here on it never prints.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that must send it (a token request, a header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is empty (an unset secret is not a secret worth masking).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Neither `{:?}` nor `{}` (nor a struct that derives Debug around it) shows the value.
    #[test]
    fn secret_never_prints_its_value() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            secret: Secret,
        }
        let s = Secret::new("sentinel-3f9a");
        let shown = format!("{s} {s:?} {:?}", Holder { secret: s.clone() });
        assert!(!shown.contains("sentinel-3f9a"), "{shown}");
        assert_eq!(s.expose(), "sentinel-3f9a");
    }
}
