//! `scripts/bench remove`: the parallel delete of issue 9 measured against a sequential loop.
//!
//! It starts `aib-emulator` on a real-time clock with a 5 s Image Builder delete. From freshly
//! created finished templates of one prefix each time, it times `remove-templates` on one
//! template alone ("one delete") and on 50 templates with the default `--concurrency` (both
//! `--runs` times, the median counts), once on 50 with `--concurrency 1` (one DELETE request
//! at a time, the waits still together), and `--sequential-runs` times a sequential loop over
//! the 50 through the same ARM client: delete one, wait until it is gone, next — what the
//! original pipeline's loop did. It prints the figures and writes its marked section of
//! docs/benchmarks.md. A missed target is a result, not a failure: it exits non-zero only when
//! something broke.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aib::azure::env::{self, Env};
use aib::azure::image_template;
use aib::azure::{Azure, AzureSettings, NoObserver};
use aib_emulator::{Emulator, EmulatorConfig, KnobValues};
use clap::Parser;
use futures::StreamExt;
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

const GROUP: &str = "rg-aib-bench-remove";
const PREFIX: &str = "lin-bench";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
/// Emulated seconds per real second: 1, so a 5 s emulated delete takes 5 s of wall time.
const TIME_SCALE: f64 = 1.0;
const DELETE: Duration = Duration::from_secs(5);

/// Time remove-templates on many templates in parallel and one at a time.
#[derive(Debug, Parser)]
struct Args {
    /// The remove-templates binary to measure.
    #[arg(long)]
    remove_templates: PathBuf,
    /// The results file whose `remove` section is rewritten.
    #[arg(long)]
    out: PathBuf,
    /// Templates per run.
    #[arg(long, default_value_t = 50)]
    templates: usize,
    /// Runs of "one delete" and of the parallel run (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Runs of the sequential loop (about templates x 5 s each).
    #[arg(long, default_value_t = 1)]
    sequential_runs: usize,
}

/// An emulator with what templates need, and a repository root with a parameter file.
struct World {
    bin: PathBuf,
    emu: Emulator,
    azure: Azure,
    root: tempfile::TempDir,
    identity: String,
    definition: String,
}

/// One run of the binary: its wall time and how many templates it reported deleted.
struct Timed {
    wall: Duration,
    deleted: u64,
}

/// Several runs of one kind.
struct Runs(Vec<Timed>);

impl Runs {
    fn median(&self) -> Duration {
        let mut walls: Vec<Duration> = self.0.iter().map(|t| t.wall).collect();
        walls.sort();
        match walls.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => walls[n / 2],
            n => (walls[n / 2 - 1] + walls[n / 2]) / 2,
        }
    }

    fn all(&self) -> String {
        let walls: Vec<String> = self
            .0
            .iter()
            .map(|t| format!("{:.2}", secs(t.wall)))
            .collect();
        walls.join(", ")
    }

    fn deleted(&self) -> u64 {
        self.0.iter().map(|t| t.deleted).min().unwrap_or(0)
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("bench remove: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(&args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench remove: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn bench(args: &Args) -> Result<(), Error> {
    let load_before = loadavg();
    let started = time::OffsetDateTime::now_utc();
    let world = World::start(args.remove_templates.clone()).await?;
    let n = args.templates;
    let runs = args.runs.max(1);
    // Every batch gets names of its own, an hour of timestamps apart.
    let mut batch = 0u64;
    let mut fresh = |count: usize| {
        batch += 1;
        names(started - Duration::from_secs(86_400 + batch * 3_600), count)
    };

    let mut one = Runs(Vec::new());
    let mut parallel = Runs(Vec::new());
    for run in 1..=runs {
        println!("bench: run {run}/{runs}: one template alone (one delete)");
        world.templates(&fresh(1)).await?;
        let t = world.remove(&[], 1)?;
        println!("bench: one delete {:.2} s", secs(t.wall));
        one.0.push(t);

        println!("bench: run {run}/{runs}: {n} templates, default concurrency (8)");
        world.templates(&fresh(n)).await?;
        let t = world.remove(&[], n)?;
        println!("bench: parallel {:.2} s", secs(t.wall));
        parallel.0.push(t);
    }

    println!("bench: {n} templates, --concurrency 1 (one DELETE request at a time)");
    world.templates(&fresh(n)).await?;
    let one_request = Runs(vec![world.remove(&["--concurrency", "1"], n)?]);
    println!(
        "bench: one request at a time {:.2} s",
        secs(one_request.median())
    );

    world.none_left().await?;
    let mut sequential = Runs(Vec::new());
    for run in 1..=args.sequential_runs.max(1) {
        println!("bench: sequential loop {run}: {n} templates, delete and wait one by one");
        world.templates(&fresh(n)).await?;
        let t = world.sequential(n).await?;
        println!("bench: sequential {:.2} s", secs(t.wall));
        sequential.0.push(t);
    }

    world.none_left().await?;
    let (one_m, par_m, seq_m) = (
        secs(one.median()),
        secs(parallel.median()),
        secs(sequential.median()),
    );
    let vs_one = par_m / one_m;
    let vs_seq = seq_m / par_m;
    let verdict = if vs_one < 2.0 { "MET" } else { "MISSED" };
    println!();
    println!("one delete (1 template), median:       {one_m:>8.2} s");
    println!("parallel ({n}, concurrency 8), median:  {par_m:>8.2} s");
    println!(
        "parallel ({n}, concurrency 1):          {:>8.2} s",
        secs(one_request.median())
    );
    println!("sequential loop ({n}), median:          {seq_m:>8.2} s");
    println!("parallel / one delete:                 {vs_one:>8.2}x  (target < 2x: {verdict})");
    println!("sequential / parallel:                 {vs_seq:>8.2}x");

    let section = section(&Section {
        started,
        load_before,
        load_after: loadavg(),
        n,
        one: &one,
        parallel: &parallel,
        one_request: &one_request,
        sequential: &sequential,
        verdict,
    });
    write_section(&args.out, "remove", &section)?;
    println!("bench: wrote the remove section of {}", args.out.display());
    Ok(())
}

/// `n` template names of the prefix, one second apart, the newest at `newest`.
fn names(newest: time::OffsetDateTime, n: usize) -> Vec<String> {
    let format = time::macros::format_description!("[year]-[month]-[day]-[hour]-[minute]-[second]");
    (0..n)
        .map(|i| {
            let at = newest - Duration::from_secs(i as u64);
            format!(
                "{PREFIX}-{}",
                at.format(&format).unwrap_or_else(|_| i.to_string())
            )
        })
        .collect()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn knobs() -> KnobValues {
    let mut k = KnobValues {
        time_scale: TIME_SCALE,
        list_lag: Duration::from_secs(0),
        lro_duration: Duration::from_millis(200),
        lro_polls: 1,
        // Real seconds, as Azure sends it: clients poll each delete once a second.
        lro_retry_after: 1,
        rbac_propagation_delay: Duration::from_secs(0),
        principal_visibility_delay: Duration::from_secs(0),
        ..Default::default()
    };
    k.aib.create = Duration::from_millis(500);
    k.aib.delete = DELETE;
    k
}

impl World {
    /// The emulator, the group, the template identity (Contributor on the group), a gallery
    /// image definition and a parameter file naming the prefix.
    async fn start(bin: PathBuf) -> Result<World, Error> {
        let emu = Emulator::start(EmulatorConfig {
            azurite: false,
            time_scale: TIME_SCALE,
            token_lifetime: Duration::from_secs(36_000),
            knobs: knobs(),
            ..Default::default()
        })
        .await?;
        let settings = AzureSettings::from_args(&Default::default(), &emulator_env(&emu))?;
        let azure = aib::azure::connect(&settings, Arc::new(NoObserver))?;
        let rg = format!(
            "/subscriptions/{}/resourceGroups/{GROUP}",
            emu.subscription_id()
        );
        let _: Value = azure
            .arm
            .put(&rg, &json!({"location": "westeurope"}))
            .await?;
        let identity =
            format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-aib");
        let id: Value = azure
            .arm
            .put(&identity, &json!({"location": "westeurope"}))
            .await?;
        let principal = id["properties"]["principalId"]
            .as_str()
            .ok_or("the identity has no principalId")?;
        emu.grant(principal, CONTRIBUTOR, &rg);
        let gallery = format!("{rg}/providers/Microsoft.Compute/galleries/gal_aib");
        let _: Value = azure
            .arm
            .put(&gallery, &json!({"location": "westeurope"}))
            .await?;
        let definition = format!("{gallery}/images/ubuntu");
        let _: Value = azure
            .arm
            .put(
                &definition,
                &json!({"location": "westeurope", "properties": {
                    "osType": "Linux", "osState": "Generalized", "hyperVGeneration": "V2",
                    "identifier": {"publisher": "aib", "offer": "agent", "sku": "u2204"}}}),
            )
            .await?;
        let root = tempfile::tempdir()?;
        std::fs::create_dir_all(root.path().join("parameters"))?;
        std::fs::create_dir_all(root.path().join("up"))?;
        std::fs::write(
            root.path().join("parameters/bench.image.parameters.json"),
            parameter_file(),
        )?;
        Ok(World {
            bin,
            emu,
            azure,
            root,
            identity,
            definition,
        })
    }

    /// Creates finished (provisioned, never run) templates, ten at a time, and checks they
    /// are all listed.
    async fn templates(&self, names: &[String]) -> Result<(), Error> {
        let made: Vec<Result<(), Error>> =
            futures::stream::iter(names.iter().map(|n| self.template(n)))
                .buffer_unordered(10)
                .collect()
                .await;
        made.into_iter().collect::<Result<(), Error>>()?;
        let listed =
            image_template::list_templates(&self.azure.arm, self.emu.subscription_id(), GROUP)
                .await?
                .len();
        if listed != names.len() {
            return Err(format!("{listed} templates listed, {} created", names.len()).into());
        }
        Ok(())
    }

    async fn template(&self, name: &str) -> Result<(), Error> {
        let body = json!({
            "location": "westeurope",
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {self.identity.clone(): {}}},
            "properties": {
                "source": {"type": "PlatformImage", "publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"},
                "customize": [{"type": "Shell", "name": "hello", "inline": ["echo hi"]}],
                "buildTimeoutInMinutes": 60,
                "distribute": [{
                    "type": "SharedImage", "runOutputName": "ubuntu",
                    "galleryImageId": self.definition,
                    "targetRegions": [{"name": "westeurope", "replicaCount": 1}]
                }]
            }
        });
        let id = image_template::template_id(self.emu.subscription_id(), GROUP, name);
        let t: Value = self.azure.arm.put(&id, &body).await?;
        match t["properties"]["provisioningState"].as_str() {
            Some("Succeeded") => Ok(()),
            other => Err(format!("template {name} is {other:?}, not Succeeded").into()),
        }
    }

    /// Runs remove-templates to the end and times it; it must exit 0, delete `expected`
    /// templates and leave none.
    fn remove(&self, extra: &[&str], expected: usize) -> Result<Timed, Error> {
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear();
        for (k, v) in [
            (env::SSL_CERT_FILE, self.emu.ca_file().display().to_string()),
            (env::AIB_ARM_ENDPOINT, self.emu.url().to_string()),
            (env::AIB_AUTHORITY_HOST, self.emu.url().to_string()),
            (
                env::AZURE_SUBSCRIPTION_ID,
                self.emu.subscription_id().into(),
            ),
            (env::AZURE_CLIENT_ID, self.emu.client_id().into()),
            (env::AZURE_TENANT_ID, self.emu.tenant_id().into()),
            (env::AZURE_CLIENT_SECRET, self.emu.client_secret().into()),
            ("PATH", "/usr/bin:/bin".into()),
        ] {
            cmd.env(k, v);
        }
        cmd.args(["--env", "bench", "--output", "json", "--root"])
            .arg(self.root.path())
            .args(extra);
        let start = Instant::now();
        let out = cmd.output()?;
        let wall = start.elapsed();
        if !out.status.success() {
            return Err(format!(
                "remove-templates {extra:?} exited {}:\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let doc: Value = serde_json::from_slice(&out.stdout)?;
        let deleted = doc["outcome"]["deleted"].as_u64().unwrap_or(0);
        if deleted != expected as u64 {
            return Err(format!("remove-templates deleted {deleted}, expected {expected}").into());
        }
        Ok(Timed { wall, deleted })
    }

    /// The baseline: list the templates, then delete each and wait until it is gone before
    /// the next, through the library's ARM client (same retries and polling as the binary).
    async fn sequential(&self, expected: usize) -> Result<Timed, Error> {
        let start = Instant::now();
        let templates =
            image_template::list_templates(&self.azure.arm, self.emu.subscription_id(), GROUP)
                .await?;
        let mut deleted = 0u64;
        for t in templates.iter().filter(|t| t.name.starts_with(PREFIX)) {
            self.azure.arm.delete(&t.id).await?;
            deleted += 1;
        }
        let wall = start.elapsed();
        if deleted != expected as u64 {
            return Err(format!("the loop deleted {deleted}, expected {expected}").into());
        }
        Ok(Timed { wall, deleted })
    }

    /// No template is left in the group (each run must have removed all of its own).
    async fn none_left(&self) -> Result<(), Error> {
        let left =
            image_template::list_templates(&self.azure.arm, self.emu.subscription_id(), GROUP)
                .await?
                .len();
        if left > 0 {
            return Err(format!("{left} templates left after a run").into());
        }
        Ok(())
    }
}

/// The emulator's service principal with a secret, its CA and endpoints.
fn emulator_env(emu: &Emulator) -> Env {
    Env::from_pairs([
        (env::SSL_CERT_FILE, emu.ca_file().display().to_string()),
        (env::AIB_ARM_ENDPOINT, emu.url().to_string()),
        (env::AIB_AUTHORITY_HOST, emu.url().to_string()),
        (env::AZURE_SUBSCRIPTION_ID, emu.subscription_id().to_owned()),
        (env::AZURE_CLIENT_ID, emu.client_id().to_owned()),
        (env::AZURE_TENANT_ID, emu.tenant_id().to_owned()),
        (env::AZURE_CLIENT_SECRET, emu.client_secret().to_owned()),
        (env::PATH, "/nonexistent".to_owned()),
    ])
}

/// A parameter file whose templates are named `lin-bench-<timestamp>`.
fn parameter_file() -> String {
    json!({
        "$schema": "https://aib.dev/image.parameters.schema.json",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "location": {"value": "westeurope"},
            "resourceGroupName": {"value": GROUP},
            "identityName": {"value": "id-aib"},
            "storageAccountName": {"value": "aibscripts"},
            "containerName": {"value": "scripts-linux"},
            "galleryName": {"value": "gal_aib"},
            "scriptsFolder": {"value": "up"},
            "imageDefinition": {"value": {
                "name": "ubuntu", "osType": "Linux", "osState": "Generalized",
                "hyperVGeneration": "V2", "publisher": "aib", "offer": "agent", "sku": "u2204"
            }},
            "imageTemplate": {"value": {
                "namePrefix": PREFIX,
                "imageSource": {"type": "PlatformImage", "publisher": "Canonical",
                    "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2", "version": "latest"},
                "customizationSteps": [{"type": "Shell", "name": "hello", "inline": ["echo hi"]}],
                "vmSize": "Standard_D2ds_v5",
                "replicationRegions": ["westeurope"]
            }}
        }
    })
    .to_string()
}

struct Section<'a> {
    started: time::OffsetDateTime,
    load_before: String,
    load_after: String,
    n: usize,
    one: &'a Runs,
    parallel: &'a Runs,
    one_request: &'a Runs,
    sequential: &'a Runs,
    verdict: &'a str,
}

fn section(s: &Section<'_>) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let when = s.started.format(&format).unwrap_or_default();
    let n = s.n;
    let (one, par, req, seq) = (
        secs(s.one.median()),
        secs(s.parallel.median()),
        secs(s.one_request.median()),
        secs(s.sequential.median()),
    );
    let verdict = s.verdict.to_ascii_lowercase();
    let row = |name: &str, templates: usize, how: &str, runs: &Runs| {
        format!(
            "| {name} | {templates} | {how} | {} | {:.2} s | {} | {} |",
            runs.0.len(),
            secs(runs.median()),
            runs.all(),
            runs.deleted()
        )
    };
    format!(
        "## remove-templates (`scripts/bench remove`)

Run {when} on a 2-core machine shared with other people's builds and tests
(load average {} before, {} after).
The runs wait on a real-time clock, not on the CPU, so the contention matters little. Wall
time of the `remove-templates` process (start to exit, with `--output json`), or of the
sequential loop; the median of the runs counts.
The binary is the `dev` profile build: the time is spent waiting on Image Builder, not
computing. `aib-emulator` runs on a real-time clock (time scale {TIME_SCALE}) with an Image
Builder delete of {} s (emulated = real here) and `Retry-After: 1` on every delete's status,
so each delete is polled once a second. The templates are finished (provisioned, never
run), all `{PREFIX}-<timestamp>` in one group; each run starts from freshly created ones.
The sequential loop lists the templates, then deletes one and waits until it is gone before
the next, through the same ARM client (the original pipeline's loop).

| Run | Templates | How | Runs | Median | Each run (s) | Deleted |
| --- | ---: | --- | ---: | ---: | --- | ---: |
{}
{}
{}
{}

### Target (issue 9)

| Target | Measured (medians) | Verdict |
| --- | --- | --- |
| {n} templates in < 2× one delete | {:.2}× one delete | **{verdict}** |
| Parallel vs sequential loop | the loop takes {:.1}× the parallel run | (no target) |

`--concurrency` (default 8) bounds the DELETE *requests* in flight — the write burst ARM
throttles — not the deletes: a request is accepted (202) in milliseconds, then every accepted
delete is polled at the same time, each at its own `Retry-After`. So {n} templates take about
one delete plus the time to send {n} requests; with `--concurrency 1` (requests one at a
time) they took {req:.2} s, {:.2}× one delete. Before this change the bound covered the
whole delete, wait included: 50 templates went in 7 waves of 8 and took 35.25 s, 6.72× one
delete (run of 2026-11-28 14:23 UTC).
",
        s.load_before,
        s.load_after,
        DELETE.as_secs(),
        row("one delete", 1, "`remove-templates` (default)", s.one),
        row(
            "parallel",
            n,
            "`remove-templates` (default, `--concurrency 8`)",
            s.parallel
        ),
        row(
            "one request at a time",
            n,
            "`remove-templates --concurrency 1`",
            s.one_request
        ),
        row(
            "sequential loop",
            n,
            "delete, wait until gone, next",
            s.sequential
        ),
        par / one,
        seq / par,
        req / one,
    )
}

const HEADER: &str = "# Benchmarks

Written by `scripts/bench` (run it again rather than editing a section by hand; each
benchmark rewrites only its own section). Performance is measured here, not in timed tests.
";

/// Replaces this benchmark's section of the results file, keeping the others (the same
/// markers as scripts/bench-support/upload.py).
fn write_section(out: &Path, name: &str, body: &str) -> Result<(), Error> {
    let (start, end) = (
        format!("<!-- bench:{name} -->"),
        format!("<!-- /bench:{name} -->"),
    );
    let block = format!("{start}\n{}\n{end}\n", body.trim_end());
    let mut text = if out.exists() {
        std::fs::read_to_string(out)?
    } else {
        HEADER.to_owned()
    };
    match (text.split_once(&start), text.contains(&end)) {
        (Some((before, rest)), true) => {
            let after = rest
                .split_once(&end)
                .map(|(_, a)| a.trim_start_matches('\n'))
                .unwrap_or_default();
            let sep = if after.is_empty() { "" } else { "\n" };
            text = format!("{before}{block}{sep}{after}");
        }
        _ => {
            text = format!("{}\n\n{block}", text.trim_end_matches('\n'));
        }
    }
    std::fs::write(out, text)?;
    Ok(())
}
