//! Fault injection for the plain monolith: `POST /admin/crash/{component}`
//! arms a tripwire, and the next request to that component's routes
//! panics in its handler's task. Tokio contains the panic to that task:
//! the request's connection closes unanswered, nothing is restarted, and
//! every other request goes on. That is what a panic costs a plain
//! monolith (a panic that aborted the process would be the harness's
//! `kill -9` fault instead).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// The components and the routes that reach them.
const COMPONENTS: [(&str, &str); 3] = [
    ("accounts", "/v1/accounts"),
    ("transfers", "/v1/transfers"),
    ("chat", "/v1/rooms"),
];

/// One armed-or-not wire per component.
#[derive(Clone, Default)]
pub struct Tripwires(Arc<[AtomicBool; COMPONENTS.len()]>);

impl Tripwires {
    /// Whether a request to `path` trips an armed wire (disarming it).
    fn tripped(&self, path: &str) -> Option<&'static str> {
        COMPONENTS
            .iter()
            .zip(self.0.iter())
            .find(|((_, prefix), _)| path.starts_with(prefix))
            // A plain read first: only an armed wire is written to.
            .filter(|(_, armed)| {
                armed.load(Ordering::Acquire) && armed.swap(false, Ordering::AcqRel)
            })
            .map(|((name, _), _)| *name)
    }
}

impl edge::Admin for Tripwires {
    fn crash(&self, target: &str) -> Result<(), String> {
        let index = COMPONENTS
            .iter()
            .position(|(name, _)| *name == target)
            .ok_or_else(|| format!("no component {target}"))?;
        self.0[index].store(true, Ordering::Release);
        Ok(())
    }

    fn targets(&self) -> Vec<String> {
        COMPONENTS
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect()
    }
}

/// The middleware: panics where a wire is armed.
pub async fn trip(State(wires): State<Tripwires>, request: Request, next: Next) -> Response {
    if let Some(component) = wires.tripped(request.uri().path()) {
        panic!("injected panic in a {component} handler");
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge::Admin as _;

    #[test]
    fn an_armed_wire_trips_once_and_only_on_its_routes() {
        let wires = Tripwires::default();
        assert_eq!(wires.tripped("/v1/transfers"), None, "nothing armed");
        wires.crash("transfers").expect("a component");
        assert_eq!(wires.tripped("/v1/rooms/general/messages"), None);
        assert_eq!(wires.tripped("/v1/transfers/t-1"), Some("transfers"));
        assert_eq!(wires.tripped("/v1/transfers"), None, "disarmed by the trip");
        assert!(wires.crash("ledger").is_err());
        assert_eq!(wires.targets(), ["accounts", "transfers", "chat"]);
    }
}
