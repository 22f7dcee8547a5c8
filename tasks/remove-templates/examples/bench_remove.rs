//! `scripts/bench remove`: the parallel delete of issue 9 measured against a sequential one.
//!
//! It starts `aib-emulator` on a real-time clock with a 5 s Image Builder delete, creates 50
//! finished templates of one prefix, times one `remove-templates` run with the default
//! concurrency, recreates them and times `--concurrency 1`, and times one template alone as
//! "one delete". It prints the figures and writes its marked section of docs/benchmarks.md.
//! A missed target is a result, not a failure: it exits non-zero only when something broke.

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
    let base = started - Duration::from_secs(86_400);

    println!("bench: one template alone (one delete)");
    world.templates(&names(base, 1)).await?;
    let one = world.remove(&[], 1)?;
    println!("bench: one delete {:.2} s", secs(one.wall));

    let n = args.templates;
    println!("bench: {n} templates, default concurrency (8)");
    world
        .templates(&names(base - Duration::from_secs(10_000), n))
        .await?;
    let parallel = world.remove(&[], n)?;
    println!("bench: parallel {:.2} s", secs(parallel.wall));

    println!("bench: {n} templates, --concurrency 1");
    world
        .templates(&names(base - Duration::from_secs(20_000), n))
        .await?;
    let sequential = world.remove(&["--concurrency", "1"], n)?;
    println!("bench: sequential {:.2} s", secs(sequential.wall));

    let vs_one = secs(parallel.wall) / secs(one.wall);
    let vs_seq = secs(sequential.wall) / secs(parallel.wall);
    let verdict = if vs_one < 2.0 { "MET" } else { "MISSED" };
    println!();
    println!("one delete (1 template):       {:>8.2} s", secs(one.wall));
    println!(
        "parallel ({n}, concurrency 8): {:>8.2} s",
        secs(parallel.wall)
    );
    println!(
        "sequential ({n}, concurrency 1):{:>8.2} s",
        secs(sequential.wall)
    );
    println!("parallel / one delete:         {vs_one:>8.2}x  (target < 2x: {verdict})");
    println!("sequential / parallel:         {vs_seq:>8.2}x");

    let section = section(&Section {
        started,
        load_before,
        load_after: loadavg(),
        n,
        one: &one,
        parallel: &parallel,
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
    one: &'a Timed,
    parallel: &'a Timed,
    sequential: &'a Timed,
    verdict: &'a str,
}

fn section(s: &Section<'_>) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let when = s.started.format(&format).unwrap_or_default();
    let n = s.n;
    let (one, par, seq) = (
        secs(s.one.wall),
        secs(s.parallel.wall),
        secs(s.sequential.wall),
    );
    let waves = n.div_ceil(8);
    let verdict = s.verdict.to_ascii_lowercase();
    let waves_note = if waves > 1 {
        format!(
            "With at most 8 deletes in flight, {n} templates go in {waves} waves of one delete
each, so the parallel run takes about {waves}× one delete: under 2× needs every delete in
flight at once (`--concurrency {n}`, the flag allows up to 64). The ratio to the
sequential loop is what the bound of 8 buys."
        )
    } else {
        format!("All {n} deletes are in flight at once (at most 8), so the run takes one delete.")
    };
    format!(
        "## remove-templates (`scripts/bench remove`)

Run {when}, one run each: wall time of the `remove-templates` process (start to
exit, with `--output json`). Load average {} before and {} after (the
2-core machine is shared).
The binary is the `dev` profile build: the time is spent waiting on Image Builder, not
computing. `aib-emulator` runs on a real-time clock (time scale {TIME_SCALE}) with an Image
Builder delete of {} s (emulated = real here) and `Retry-After: 1` on every delete's status,
so each delete is polled once a second. The templates are finished (provisioned, never
run), all `{PREFIX}-<timestamp>` in one group; each run starts from freshly created ones.

| Run | Templates | Concurrency | Wall time | Deleted |
| --- | ---: | ---: | ---: | ---: |
| one delete | 1 | 8 (default) | {one:.2} s | {} |
| parallel | {n} | 8 (default) | {par:.2} s | {} |
| sequential | {n} | 1 | {seq:.2} s | {} |

### Target (issue 9)

| Target | Measured | Verdict |
| --- | --- | --- |
| {n} templates in < 2× one delete | {:.2}× one delete | **{verdict}** |
| Parallel vs sequential | sequential takes {:.2}× the parallel run | (no target) |

{waves_note}
",
        s.load_before,
        s.load_after,
        DELETE.as_secs(),
        s.one.deleted,
        s.parallel.deleted,
        s.sequential.deleted,
        par / one,
        seq / par,
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
