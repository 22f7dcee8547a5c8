//! A sentinel client secret never appears in anything a run shows: reporter output, errors
//! (Display and Debug), Debug of the settings and clients — on success and on failure.

use std::sync::Arc;

use aib::azure::env;
use aib::azure::{ReporterObserver, connect};
use aib::report::{Capture, Reporter, Terminal, TerminalMode, report_error};
use aib_emulator::EmulatorConfig;

use super::support::*;

const SENTINEL: &str = "sentinel-secret-7f3e9c1d";

/// With the sentinel as client secret: a successful call, a failing call and a refused token
/// leave no trace of it in captured output, errors or Debug views.
#[tokio::test]
async fn sentinel_client_secret_never_appears_in_output_or_errors() {
    let emu = emulator_with(EmulatorConfig {
        client_secret: Some(SENTINEL.to_owned()),
        ..EmulatorConfig::default()
    })
    .await;
    let capture = Capture::new();
    let reporter: Arc<dyn Reporter> =
        Arc::new(Terminal::new(capture.writer(), TerminalMode::Plain));
    let mut shown = String::new();

    // Success: settings, connect, a listing, a 404.
    let s = settings(&secret_env(&emu));
    shown.push_str(&format!("{s:?}\n{:?}\n", s.auth.identity()));
    let azure = connect(&s, Arc::new(ReporterObserver::new(reporter.clone()))).unwrap();
    shown.push_str(&format!("{azure:?}\n{:?}\n", azure.arm));
    let groups: Vec<serde_json::Value> = azure
        .arm
        .list(&format!("{}/resourcegroups", sub(&emu)))
        .await
        .unwrap();
    reporter.info(&format!("{} groups", groups.len()));
    let missing = azure
        .arm
        .get::<serde_json::Value>(&format!("{}/resourcegroups/none", sub(&emu)))
        .await
        .unwrap_err();
    report_error(reporter.as_ref(), &missing, None);
    shown.push_str(&format!("{missing}\n{missing:?}\n"));

    // Failure: the sentinel with a client id the tenant does not know.
    let mut wrong = secret_env(&emu);
    wrong.set(env::AZURE_CLIENT_ID, "00000000-0000-0000-0000-00000000abcd");
    let s = settings(&wrong);
    let azure = connect(&s, Arc::new(ReporterObserver::new(reporter.clone()))).unwrap();
    let refused = azure
        .arm
        .get::<serde_json::Value>(&format!("{}/resourcegroups", sub(&emu)))
        .await
        .unwrap_err();
    report_error(reporter.as_ref(), &refused, None);
    shown.push_str(&format!("{refused}\n{refused:?}\n"));
    assert!(
        refused.to_string().contains("could not get a token"),
        "{refused}"
    );
    assert_eq!(refused.exit_status(), aib::exit::ExitStatus::AzureFailure);
    reporter.finish().unwrap();

    let output = capture.text();
    assert!(
        output.contains("ResourceGroupNotFound"),
        "the errors were reported: {output}"
    );
    for (what, text) in [("captured output", &output), ("errors and Debug", &shown)] {
        assert!(
            !text.contains(SENTINEL),
            "the secret leaked into {what}:\n{text}"
        );
    }
}
