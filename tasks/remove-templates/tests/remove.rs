//! Removing templates against the emulator's Image Builder.

use std::time::Duration;

use aib::azure::rbac::builtin::CONTRIBUTOR;
use aib_testkit::Seed;
use futures::StreamExt as _;

use crate::support::{Actions as _, World, name, name_at};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// Three finished `lin-it-<timestamp>` templates, one with a running build, and templates of
/// `lin-it-extra` and `win-it` in the same group: which ones `lin-it` removes.
async fn overlapping_world() -> (World, Vec<String>, String, Vec<String>) {
    let w = World::start("lin-it", None).await;
    let finished: Vec<String> = (1..=3).map(|d| name("lin-it", DAY * d)).collect();
    for n in &finished {
        w.template(n, None).await;
    }
    let running = name("lin-it", HOUR);
    w.template(&running, None).await;
    w.start_build(&running).await;
    let others = vec![name("lin-it-extra", DAY), name("win-it", DAY)];
    for n in &others {
        w.template(n, None).await;
    }
    (w, finished, running, others)
}

/// Only the finished templates named exactly `lin-it-<timestamp>` go; the running one is
/// skipped with its state; `lin-it-extra-…` and `win-it-…` are untouched.
#[tokio::test(flavor = "multi_thread")]
async fn only_own_finished_templates_are_deleted() {
    let (w, finished, running, others) = overlapping_world().await;
    w.emu.clear_requests();

    let run = w.run(&["--output", "json"]);
    run.expect(0);
    let outcome = run.outcome();
    assert_eq!(outcome["deleted"], 3, "{outcome}");
    assert_eq!(outcome["skipped"], 1, "{outcome}");
    let mut expected = finished.clone();
    expected.sort();
    assert_eq!(run.with_action("deleted"), expected);
    assert_eq!(run.with_action("skipped"), std::slice::from_ref(&running));
    let skipped = &outcome["templates"][0];
    assert_eq!(skipped["name"], running.as_str());
    assert_eq!(skipped["runState"], "Running");
    assert!(
        skipped["reason"].as_str().unwrap().contains("Running"),
        "{skipped}"
    );

    let mut left = vec![running.clone()];
    left.extend(others.iter().cloned());
    left.sort();
    assert_eq!(w.names().await, left);
    let deletes: Vec<String> = w
        .writes()
        .into_iter()
        .filter(|r| r.starts_with("DELETE"))
        .collect();
    assert_eq!(deletes.len(), 3, "{deletes:?}");
    assert!(
        deletes
            .iter()
            .all(|d| finished.iter().any(|f| d.ends_with(f))),
        "{deletes:?}"
    );
}

/// `--what-if` lists the same plan and sends no write at all.
#[tokio::test(flavor = "multi_thread")]
async fn what_if_lists_the_plan_and_sends_no_write() {
    let (w, finished, running, others) = overlapping_world().await;
    let before = w.names().await;
    w.emu.clear_requests();

    let run = w.run(&["--what-if", "--output", "json"]);
    run.expect(0);
    let mut expected = finished.clone();
    expected.sort();
    assert_eq!(run.with_action("wouldDelete"), expected);
    assert_eq!(run.with_action("skipped"), [running]);
    assert_eq!(run.outcome()["whatIf"], true);
    assert!(w.writes().is_empty(), "{:?}", w.writes());
    assert_eq!(w.names().await, before);
    assert!(others.iter().all(|o| before.contains(o)));

    let text = w.run(&["--what-if"]);
    text.expect(0);
    assert!(
        text.stdout.contains("would delete") || text.stderr.contains("would delete"),
        "{}{}",
        text.stdout,
        text.stderr
    );
}

/// `--keep 1` keeps the newest finished template; `--older-than` keeps the younger ones.
#[tokio::test(flavor = "multi_thread")]
async fn keep_and_older_than_retain_the_newest() {
    let w = World::start("lin-it", None).await;
    let newest = name("lin-it", HOUR);
    let middle = name("lin-it", DAY * 2);
    let oldest = name("lin-it", DAY * 10);
    for n in [&newest, &middle, &oldest] {
        w.template(n, None).await;
    }

    let run = w.run(&["--keep", "1", "--older-than", "3d", "--output", "json"]);
    run.expect(0);
    assert_eq!(run.with_action("deleted"), std::slice::from_ref(&oldest));
    let mut kept = vec![newest.clone(), middle.clone()];
    kept.sort();
    assert_eq!(run.with_action("kept"), kept);
    assert_eq!(w.names().await, kept);

    let run = w.run(&["--keep", "1", "--output", "json"]);
    run.expect(0);
    assert_eq!(run.with_action("deleted"), [middle]);
    assert_eq!(w.names().await, [newest]);
}

/// `--cancel-running` cancels the running build, waits for Canceled, then deletes.
#[tokio::test(flavor = "multi_thread")]
async fn cancel_running_cancels_waits_and_deletes() {
    let w = World::start("lin-it", None).await;
    let running = name("lin-it", HOUR);
    w.template(&running, None).await;
    w.start_build(&running).await;
    w.emu.clear_requests();

    let run = w.run(&["--cancel-running", "--output", "json"]);
    run.expect(0);
    assert_eq!(run.with_action("deleted"), std::slice::from_ref(&running));
    assert_eq!(run.outcome()["canceled"], 1);
    assert!(w.names().await.is_empty());
    let writes = w.writes();
    let cancel = writes
        .iter()
        .position(|r| r.starts_with("POST") && r.ends_with("/cancel"))
        .expect("a cancel was sent");
    let delete = writes
        .iter()
        .position(|r| r.starts_with("DELETE"))
        .expect("a delete was sent");
    assert!(cancel < delete, "{writes:?}");
}

/// A user-given staging group keeps its leftovers while a template still uses it, and is
/// removed (with --remove-staging-group) once none does.
#[tokio::test(flavor = "multi_thread")]
async fn staging_group_is_cleaned_only_when_unused() {
    let w = World::start("lin-it", Some("rg-stage")).await;
    let stage_group = Seed::group(&w.emu, &w.azure, "rg-stage").await;
    let principal = w.identity_principal().await;
    w.emu.grant(&principal, CONTRIBUTOR, &stage_group.id);
    let running = name("lin-it", HOUR);
    w.template(&running, Some("rg-stage")).await;
    w.start_build(&running).await;
    let leftover = stage_group.identity("leftover", &[]).await.id;

    let run = w.run(&["--output", "json"]);
    run.expect(0);
    let staging = &run.outcome()["staging"];
    assert_eq!(staging["action"], "inUse", "{staging}");
    assert_eq!(staging["usedBy"][0], running.as_str());
    let still: Option<serde_json::Value> = w.azure.arm.get_optional(&leftover).await.unwrap();
    assert!(still.is_some(), "leftovers stay while the group is used");

    let run = w.run(&[
        "--cancel-running",
        "--remove-staging-group",
        "--output",
        "json",
    ]);
    run.expect(0);
    assert_eq!(run.outcome()["staging"]["action"], "removed");
    let group: Option<serde_json::Value> = w
        .azure
        .arm
        .get_optional(&w.group_id("rg-stage"))
        .await
        .unwrap();
    assert!(group.is_none(), "the unused staging group is gone");
}

/// 50 templates are all deleted (in parallel; the speed is measured by the benchmark).
#[tokio::test(flavor = "multi_thread")]
async fn fifty_templates_are_all_deleted() {
    let w = World::start("lin-it", None).await;
    let mut k = w.emu.knobs().get();
    k.aib.delete = Duration::from_secs(5);
    w.emu.knobs().set(k);
    let base = time::OffsetDateTime::now_utc() - DAY;
    let names: Vec<String> = (0..50u64)
        .map(|i| name_at("lin-it", base - Duration::from_secs(i)))
        .collect();
    futures::stream::iter(names.iter().map(|n| w.template(n, None)))
        .buffer_unordered(10)
        .collect::<Vec<()>>()
        .await;
    assert_eq!(w.names().await.len(), 50);
    let run = w.run(&["--output", "json"]);
    run.expect(0);
    assert_eq!(run.outcome()["deleted"], 50);
    assert!(w.names().await.is_empty());
}

/// `--concurrency` bounds the DELETE requests, not the deletes: with a bound of 2, all ten
/// DELETEs are accepted before the first delete ends, and each is polled to its end.
#[tokio::test(flavor = "multi_thread")]
async fn every_delete_is_accepted_before_the_first_one_ends() {
    let w = World::start("lin-it", None).await;
    let base = time::OffsetDateTime::now_utc() - DAY;
    let names: Vec<String> = (0..10u64)
        .map(|i| name_at("lin-it", base - Duration::from_secs(i)))
        .collect();
    futures::stream::iter(names.iter().map(|n| w.template(n, None)))
        .buffer_unordered(5)
        .collect::<Vec<()>>()
        .await;
    let mut k = w.emu.knobs().get();
    // 30 emulated minutes = 3 s of real time at the tests' time scale; polled once a second.
    k.aib.delete = Duration::from_secs(1800);
    k.lro_retry_after = 1;
    w.emu.knobs().set(k);
    w.emu.clear_requests();

    let run = w.run(&["--concurrency", "2", "--output", "json"]);
    run.expect(0);
    assert_eq!(run.outcome()["deleted"], 10);
    assert!(w.names().await.is_empty());

    let log = w.emu.requests();
    let accepted: Vec<_> = log
        .iter()
        .filter(|r| r.method == "DELETE" && r.status == 202)
        .map(|r| r.at)
        .collect();
    let ended: Vec<_> = log
        .iter()
        .filter(|r| {
            r.method == "GET"
                && r.path.to_ascii_lowercase().contains("/operationresults/")
                && matches!(r.status, 200 | 204)
        })
        .map(|r| r.at)
        .collect();
    assert_eq!(accepted.len(), 10, "one accepted DELETE per template");
    assert_eq!(ended.len(), 10, "each delete followed to its end");
    let last_accepted = accepted.iter().max().unwrap();
    let first_ended = ended.iter().min().unwrap();
    assert!(
        last_accepted < first_ended,
        "all DELETEs were sent while the first delete still ran"
    );
}

/// With injected throttling and server errors, the result is the same.
#[tokio::test(flavor = "multi_thread")]
async fn throttling_and_server_errors_do_not_change_the_result() {
    let (w, finished, running, others) = overlapping_world().await;
    let mut k = w.emu.knobs().get();
    k.throttle_rate = 0.2;
    k.throttle_retry_after = 0;
    k.server_error_rate = 0.2;
    w.emu.knobs().set(k);

    let run = w.run(&["--output", "json"]);
    run.expect(0);
    let mut expected = finished;
    expected.sort();
    assert_eq!(run.with_action("deleted"), expected);
    let mut k = w.emu.knobs().get();
    k.throttle_rate = 0.0;
    k.server_error_rate = 0.0;
    w.emu.knobs().set(k);
    let mut left = vec![running];
    left.extend(others);
    left.sort();
    assert_eq!(w.names().await, left);
    assert!(
        w.emu.requests().iter().any(|r| r.status == 429)
            && w.emu.requests().iter().any(|r| r.status >= 500),
        "faults were injected"
    );
}

/// A build stuck in Canceling fails its template with Microsoft's advice (exit 1) while the
/// other templates are still deleted.
#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_cancel_fails_only_its_template_with_advice() {
    let w = World::start("lin-it", None).await;
    let finished = name("lin-it", DAY);
    w.template(&finished, None).await;
    let stuck = name("lin-it", HOUR);
    w.template(&stuck, None).await;
    let mut k = w.emu.knobs().get();
    k.aib.stuck_canceling = true;
    w.emu.knobs().set(k);
    w.start_build(&stuck).await;

    let run = w.run(&[
        "--cancel-running",
        "--cancel-timeout",
        "2s",
        "--output",
        "json",
    ]);
    run.expect(1);
    assert_eq!(run.with_action("deleted"), std::slice::from_ref(&finished));
    assert_eq!(run.with_action("failed"), std::slice::from_ref(&stuck));
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("still Canceling"), "{all}");
    assert!(all.contains("support request"), "{all}");
    assert_eq!(w.names().await, [stuck]);
}

/// Leftovers in a user-given staging group no template uses are listed by what-if (no write)
/// and removed without it; the group itself stays.
#[tokio::test(flavor = "multi_thread")]
async fn unused_staging_group_leftovers_are_removed_and_the_group_stays() {
    let w = World::start("lin-it", Some("rg-stage")).await;
    let stage_group = Seed::group(&w.emu, &w.azure, "rg-stage").await;
    let leftover = stage_group.identity("leftover", &[]).await.id;
    w.emu.clear_requests();

    let run = w.run(&["--what-if", "--output", "json"]);
    run.expect(0);
    let staging = &run.outcome()["staging"];
    assert_eq!(staging["action"], "wouldEmpty", "{staging}");
    assert!(
        staging["resources"][0]
            .as_str()
            .is_some_and(|r| r.eq_ignore_ascii_case(&leftover)),
        "{staging}"
    );
    assert!(w.writes().is_empty(), "{:?}", w.writes());

    let run = w.run(&["--output", "json"]);
    run.expect(0);
    assert_eq!(run.outcome()["staging"]["action"], "emptied");
    let gone: Option<serde_json::Value> = w.azure.arm.get_optional(&leftover).await.unwrap();
    assert!(gone.is_none(), "the leftover is removed");
    let group: Option<serde_json::Value> = w
        .azure
        .arm
        .get_optional(&w.group_id("rg-stage"))
        .await
        .unwrap();
    assert!(
        group.is_some(),
        "the group stays without --remove-staging-group"
    );
}

/// A leftover of a type the api-version table does not list (a network security group, as a
/// failed build leaves behind) is removed with the newest stable version its provider's
/// registration lists, read once.
#[tokio::test(flavor = "multi_thread")]
async fn a_leftover_of_an_unlisted_type_is_removed() {
    let w = World::start("lin-it", Some("rg-stage")).await;
    let stage_group = Seed::group(&w.emu, &w.azure, "rg-stage").await;
    let nsgs: Vec<String> = ["nsg-a", "nsg-b"]
        .iter()
        .map(|n| {
            format!(
                "{}/providers/Microsoft.Network/networkSecurityGroups/{n}",
                stage_group.id
            )
        })
        .collect();
    // The emulator's newest stable Microsoft.Network version; the table has none.
    let versioned = |id: &str| format!("{id}?api-version=2024-07-01");
    for nsg in &nsgs {
        let _: serde_json::Value = w
            .azure
            .arm
            .put(
                &versioned(nsg),
                &serde_json::json!({"location": "westeurope"}),
            )
            .await
            .expect("leftover");
    }
    w.emu.clear_requests();

    let run = w.run(&["--output", "json"]);
    run.expect(0);
    let staging = &run.outcome()["staging"];
    assert_eq!(staging["action"], "emptied", "{staging}");
    assert_eq!(staging["resources"].as_array().map(Vec::len), Some(2));
    for nsg in &nsgs {
        let gone: Option<serde_json::Value> =
            w.azure.arm.get_optional(&versioned(nsg)).await.unwrap();
        assert!(gone.is_none(), "{nsg} is removed");
    }
    let log = w.emu.requests();
    let deletes: Vec<&str> = log
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.contains("networkSecurityGroups"))
        .map(|r| r.query.as_str())
        .collect();
    assert_eq!(deletes.len(), 2, "{deletes:?}");
    assert!(
        deletes.iter().all(|q| q.contains("api-version=2024-07-01")),
        "{deletes:?}"
    );
    let registrations = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/providers/Microsoft.Network"))
        .count();
    assert_eq!(registrations, 1, "the registration is read once per run");
}
