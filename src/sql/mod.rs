//! The extended SQL shardbuddy claims: grammar, typed AST, validation.
