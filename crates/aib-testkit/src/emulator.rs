//! The emulator as step tests start it, and an ARM client signed in to it as its Owner, with
//! which a test prepares state before the binary runs and reads it afterwards.

use std::sync::Arc;
use std::time::Duration;

use aib::azure::env::{self, Env};
use aib::azure::{Azure, AzureSettings, NoObserver};
use aib_emulator::{Emulator, EmulatorConfig, KnobValues};

/// How long the emulator's tokens live in step tests (emulated): at the fast clock's 600x a
/// real one-hour token lasts six real seconds, and every test not about renewal would renew.
pub const LONG_TOKEN_LIFETIME: Duration = Duration::from_secs(3_600_000);

/// [`KnobValues::fast`] with tokens that outlive any test ([`LONG_TOKEN_LIFETIME`]); a test
/// changes only the knobs it is about.
pub fn fast_knobs() -> KnobValues {
    let mut k = KnobValues::fast();
    k.token_lifetime = LONG_TOKEN_LIFETIME;
    k
}

/// An emulator configuration that takes its clock and token lifetime from `knobs`.
///
/// `EmulatorConfig::time_scale` and `token_lifetime` take precedence over the knobs', so a
/// test that tunes them in the knobs would otherwise silently keep the config's defaults.
pub fn step_config(azurite: bool, knobs: KnobValues) -> EmulatorConfig {
    EmulatorConfig {
        azurite,
        time_scale: knobs.time_scale,
        token_lifetime: knobs.token_lifetime,
        knobs,
        ..Default::default()
    }
}

/// Starts an emulator and signs in to it: the two things every step test begins with.
pub async fn start(config: EmulatorConfig) -> (Emulator, Azure) {
    let emu = Emulator::start(config).await.expect("the emulator starts");
    let azure = connect(&emu);
    (emu, azure)
}

/// The emulator's service principal with its secret, its CA and endpoints, and a `PATH` where
/// nothing is found, so that no developer tool (the Azure CLI) can sign the test in instead.
pub fn secret_env(emu: &Emulator) -> Env {
    let mut pairs = emu.ci_env();
    pairs.push((env::PATH, "/nonexistent".to_owned()));
    Env::from_pairs(pairs)
}

/// aib's own ARM client and blob HTTP stack signed in as the emulator's Owner (through
/// [`secret_env`]): the same code the binaries use, so the test reads what they would.
pub fn connect(emu: &Emulator) -> Azure {
    let settings =
        AzureSettings::from_args(&Default::default(), &secret_env(emu)).expect("settings resolve");
    aib::azure::connect(&settings, Arc::new(NoObserver)).expect("the ARM client is built")
}

/// How many requests with `method` the emulator logged on a path `path` accepts (its blob
/// front and ARM share one log): what a test counts to prove a run sent, or did not send, a
/// write.
pub fn count_requests(emu: &Emulator, method: &str, path: impl Fn(&str) -> bool) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.method == method && path(&r.path))
        .count()
}
