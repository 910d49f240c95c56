//! The systems under test: local processes ([`local`]), Docker Compose
//! projects ([`compose`]), their images ([`images`]) and the compose file
//! of the microservices placed by a layout ([`placed`]).

pub mod build;
pub mod compose;
pub mod images;
pub mod local;
pub mod placed;
