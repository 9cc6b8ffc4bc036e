//! `MATCH('…')` as a simple term filter with searchd-like weights.
//!
//! Supported query syntax: space-separated terms (all must match), `@field` to restrict the
//! following terms to one field, `-term`/`!term` to exclude, `*` wildcards (`*ell*`, `hel*`),
//! and `"…"` (its words are required terms). Weights follow searchd's default
//! `proximity_bm25` ranker closely enough for ordering: `1000 × matched terms + BM25 part`.

use regex::Regex;

/// Lower-cased alphanumeric words of a text.
pub fn tokenize(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
}

#[derive(Debug, Clone)]
pub struct Term {
    /// The keyword as SHOW META reports it.
    pub text: String,
    /// Restricts the term to one field.
    pub field: Option<String>,
    pub negated: bool,
    wildcard: Option<Regex>,
}

impl Term {
    fn matches_word(&self, word: &str) -> bool {
        match &self.wildcard {
            Some(re) => re.is_match(word),
            None => word == self.text,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Query {
    pub terms: Vec<Term>,
}

impl Query {
    pub fn parse(text: &str) -> Query {
        let mut terms = Vec::new();
        let mut field: Option<String> = None;
        for raw in text.split_whitespace() {
            if let Some(f) = raw.strip_prefix('@') {
                field = Some(f.to_lowercase());
                continue;
            }
            let (negated, body) = match raw.strip_prefix('-').or_else(|| raw.strip_prefix('!')) {
                Some(rest) => (true, rest),
                None => (false, raw),
            };
            let body = body.trim_matches('"');
            if body.contains('*') {
                let pattern = body
                    .split('*')
                    .map(|p| regex::escape(&p.to_lowercase()))
                    .collect::<Vec<_>>()
                    .join("\\w*");
                let wildcard = Regex::new(&format!("^{pattern}$")).ok();
                terms.push(Term {
                    text: body.to_lowercase(),
                    field: field.clone(),
                    negated,
                    wildcard,
                });
                continue;
            }
            for word in tokenize(body) {
                terms.push(Term {
                    text: word,
                    field: field.clone(),
                    negated,
                    wildcard: None,
                });
            }
        }
        Query { terms }
    }

    /// Occurrences of `term` in the document's fields (respecting the term's field).
    pub fn hits(&self, term: &Term, fields: &[(&str, &str)]) -> u64 {
        fields
            .iter()
            .filter(|(name, _)| {
                term.field
                    .as_deref()
                    .is_none_or(|f| f.eq_ignore_ascii_case(name))
            })
            .map(|(_, text)| tokenize(text).filter(|w| term.matches_word(w)).count() as u64)
            .sum()
    }

    /// Whether a document (its full-text fields as `(name, text)`) matches.
    pub fn matches(&self, fields: &[(&str, &str)]) -> bool {
        !self.terms.is_empty()
            && self.terms.iter().any(|t| !t.negated)
            && self
                .terms
                .iter()
                .all(|t| (self.hits(t, fields) > 0) != t.negated)
    }

    /// Relevance of a matching document. `stats` holds, per term, the documents containing it;
    /// `total_docs` is the number of documents in the table.
    pub fn weight(&self, fields: &[(&str, &str)], stats: &[u64], total_docs: u64) -> i64 {
        let mut matched = 0i64;
        let mut bm25 = 0.0f64;
        let n = total_docs.max(1) as f64;
        for (term, docs) in self.terms.iter().zip(stats) {
            if term.negated {
                continue;
            }
            let tf = self.hits(term, fields) as f64;
            if tf == 0.0 {
                continue;
            }
            matched += 1;
            let d = (*docs).max(1) as f64;
            let idf = ((n - d + 1.0) / d).ln() / (2.0 * (n + 1.0).ln());
            bm25 += tf / (tf + 1.2) * idf;
        }
        let bm25_part = ((0.5 + bm25).clamp(0.0, 0.999) * 1000.0) as i64;
        matched * 1000 + bm25_part
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_filters() {
        let doc = [("title", "Hello World"), ("body", "manticore search")];
        let cases = [
            ("hello", true),
            ("HELLO world", true),
            ("hello nope", false),
            ("@title manticore", false),
            ("@body manticore", true),
            ("*ell*", true),
            ("wor*", true),
            ("hello -world", false),
            ("-world", false),
            ("\"hello world\"", true),
        ];
        for (q, want) in cases {
            assert_eq!(Query::parse(q).matches(&doc), want, "{q}");
        }
    }

    #[test]
    fn golden_weight_for_a_single_term() {
        // single.97: 'hello' in 1 of 4 live documents, 2 documents (one killed) contain it → 1557
        let q = Query::parse("hello");
        assert_eq!(q.weight(&[("title", "hello world")], &[2], 4), 1557);
    }
}
