use clap::{CommandFactory, FromArgMatches, Parser};

use super::*;

/// `up`'s command line, as the binary parses it.
#[derive(Parser, Debug)]
struct Up {
    #[command(flatten)]
    up: UpArgs,
}

fn forwarded(args: &[&str]) -> Vec<(String, String)> {
    let matches = Up::command()
        .try_get_matches_from(std::iter::once("up").chain(args.iter().copied()))
        .expect("a valid command line");
    assert!(Up::from_arg_matches(&matches).is_ok());
    forwarded_env(&matches)
}

fn value<'a>(env: &'a [(String, String)], var: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == var).map(|(_, v)| v.as_str())
}

#[test]
fn every_service_knob_given_to_up_reaches_the_children() {
    let env = forwarded(&[
        "--call-timeout-ms",
        "123",
        "--mtls",
        "--workers",
        "2",
        "--transfer-path",
        "fine",
        "--storage",
        "durable",
        "--pki-dir",
        "/tmp/p",
    ]);
    assert_eq!(value(&env, "MICROSERVICES_CALL_TIMEOUT_MS"), Some("123"));
    assert_eq!(value(&env, "MICROSERVICES_MTLS"), Some("true"));
    assert_eq!(value(&env, "MICROSERVICES_WORKERS"), Some("2"));
    assert_eq!(value(&env, "MICROSERVICES_TRANSFER_PATH"), Some("fine"));
    assert_eq!(value(&env, "MICROSERVICES_STORAGE"), Some("durable"));
    assert_eq!(value(&env, "MICROSERVICES_PKI_DIR"), Some("/tmp/p"));
    // A knob left alone goes with its default, so a child cannot pick
    // up another one from somewhere else.
    assert_eq!(value(&env, "MICROSERVICES_BREAKER_OPEN_MS"), Some("1000"));
    assert_eq!(value(&env, "MICROSERVICES_SERVICE_TOKENS"), Some("false"));
    // Every knob with an environment variable and a value is there.
    let service = ServiceArgs::augment_args(clap::Command::new("serve"));
    for arg in service.get_arguments() {
        let (Some(var), false) = (arg.get_env(), arg.get_default_values().is_empty()) else {
            continue;
        };
        let var = var.to_string_lossy();
        assert!(value(&env, &var).is_some(), "{var} is not forwarded");
    }
    // Unset optional knobs are not invented.
    assert_eq!(value(&env, "MICROSERVICES_TOKEN_KEY_FILE"), None);
}

#[test]
fn the_children_get_the_addresses_the_launcher_chose() {
    let mut urls = BTreeMap::new();
    urls.insert(ServiceKind::Accounts, "http://127.0.0.1:1".to_owned());
    let env = child_env(
        &[(
            "MICROSERVICES_ACCOUNTS_URL".to_owned(),
            "http://given".to_owned(),
        )],
        &urls,
    );
    // The launcher's address comes last, so it wins.
    assert_eq!(
        env.last().map(|(k, v)| (k.as_str(), v.as_str())),
        Some(("MICROSERVICES_ACCOUNTS_URL", "http://127.0.0.1:1"))
    );
}
