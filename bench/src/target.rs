//! The systems under test: local processes ([`local`]), Docker Compose
//! projects ([`compose`]) and their images ([`images`]).

pub mod build;
pub mod compose;
pub mod images;
pub mod local;
