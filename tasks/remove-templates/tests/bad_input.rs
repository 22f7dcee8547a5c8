//! Bad input exits 2 before any request reaches the emulator.

use crate::support::World;

/// Bad ages and counts, and a missing parameter file, exit 2 and send nothing (not even a
/// token request).
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_2_before_any_request() {
    let w = World::start("lin-it", None).await;
    w.emu.clear_requests();

    let run = w.run(&["--older-than", "7 days"]);
    run.expect(2);
    assert!(run.stderr.contains("unit"), "{}", run.stderr);
    w.run(&["--keep", "-1"]).expect(2);
    w.run(&["--concurrency", "0"]).expect(2);
    w.run(&["--cancel-timeout", "soon"]).expect(2);
    std::fs::remove_file(w.root.path().join("parameters/test.image.parameters.json")).unwrap();
    w.run(&[]).expect(2);

    assert!(w.emu.requests().is_empty(), "{:?}", w.emu.requests());
}
