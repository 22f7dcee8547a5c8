//! The secrets a reporter knows, and their replacement by `***` in text it writes.
//!
//! Each backend keeps one [`Masker`] inside the same lock as its writer. Registering (and
//! announcing to the CI) and masking a line therefore happen in one order: once a secret is
//! registered, no line written afterwards, from any thread, can contain it.

use std::borrow::Cow;

/// What every secret is replaced with (the runners' own mask, so logs read the same).
pub const MASK: &str = "***";

/// The registered secret values, longest first so a secret containing another is masked whole.
#[derive(Debug, Default, Clone)]
pub struct Masker {
    values: Vec<String>,
}

impl Masker {
    /// No secrets yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Learns `value`, and each line of it separately (a CI masks line by line, and a log line
    /// may carry one line of a multi-line key). Returns the pieces that were new, in the order
    /// to announce them; empty pieces are never secrets and are skipped.
    pub fn add(&mut self, value: &str) -> Vec<String> {
        let mut pieces = vec![value.to_owned()];
        if value.contains(['\n', '\r']) {
            pieces.extend(value.split(['\n', '\r']).map(str::to_owned));
        }
        let mut new = Vec::new();
        for piece in pieces {
            if !piece.trim().is_empty() && !self.values.contains(&piece) && !new.contains(&piece) {
                new.push(piece);
            }
        }
        self.values.extend(new.iter().cloned());
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        new
    }

    /// `text` with every registered secret replaced by [`MASK`].
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), MASK));
            }
        }
        out
    }

    /// `value` with every string in it (keys included) masked.
    pub fn mask_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.mask(s).into_owned()),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.mask(k).into_owned(), self.mask_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// True when no secret is registered.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every occurrence of every secret is masked, the longer one first when they overlap.
    #[test]
    fn mask_replaces_every_occurrence_longest_first() {
        let mut m = Masker::new();
        m.add("abc");
        m.add("abcdef");
        assert_eq!(m.mask("x abcdef y abc z abcabc"), "x *** y *** z ******");
    }

    /// A multi-line secret is masked whole and line by line; blank pieces are not secrets.
    #[test]
    fn multi_line_secret_registers_each_line() {
        let mut m = Masker::new();
        let new = m.add("line-one\n\nline-two");
        assert_eq!(new, ["line-one\n\nline-two", "line-one", "line-two"]);
        assert_eq!(m.mask("got line-two only"), "got *** only");
        assert!(m.add("line-one").is_empty(), "already known");
        assert!(m.add("  ").is_empty(), "blank is not a secret");
    }

    /// Strings and keys inside JSON are masked; numbers and structure stay.
    #[test]
    fn mask_json_masks_strings_and_keys() {
        let mut m = Masker::new();
        m.add("s3cr3t");
        let v = serde_json::json!({"a": ["x s3cr3t", 1], "s3cr3t": true});
        assert_eq!(
            m.mask_json(&v),
            serde_json::json!({"a": ["x ***", 1], "***": true})
        );
    }
}
