//! The Buddy HTTP endpoint searchd posts failed statements to.
