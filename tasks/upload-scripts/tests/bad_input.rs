//! Bad input exits 2 before any request reaches the emulator.

use crate::support::World;

/// A missing folder, an empty folder, a symlink out of the folder and a bad flag all exit 2
/// and send nothing (not even a token request).
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_2_before_any_request() {
    let w = World::start().await;
    w.emu.clear_requests();

    // Empty folder
    let run = w.run(&[]);
    run.expect(2);
    assert!(
        run.stderr.contains("has no file to upload"),
        "{}",
        run.stderr
    );

    // Symlink out of the folder
    let outside = w.root.path().join("outside.txt");
    std::fs::write(&outside, "x").unwrap();
    std::os::unix::fs::symlink(&outside, w.up().join("link.txt")).unwrap();
    let run = w.run(&[]);
    run.expect(2);
    assert!(
        run.stderr.contains("outside the scripts folder"),
        "{}",
        run.stderr
    );
    std::fs::remove_file(w.up().join("link.txt")).unwrap();

    // Missing folder
    std::fs::remove_dir(w.up()).unwrap();
    let run = w.run(&[]);
    run.expect(2);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);

    // Bad flags and a bad connection string
    w.run(&["--concurrency", "0"]).expect(2);
    w.run(&["--blob-endpoint", "not a url"]).expect(2);
    let run = w.run(&["--connection-string", "AccountName=x;AccountKey=s3cr3t!!"]);
    run.expect(2);
    assert!(!run.stderr.contains("s3cr3t"), "{}", run.stderr);

    assert!(w.emu.requests().is_empty(), "{:?}", w.emu.requests());
}
