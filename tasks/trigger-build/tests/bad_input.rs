//! Bad input exits 2 before any request to Image Builder.

use serde_json::json;

use crate::support::World;

/// A step naming a script that is not in the scripts folder: exit 2, the step and file
/// named, no template request sent.
#[tokio::test(flavor = "multi_thread")]
async fn missing_script_exits_2_without_a_request() {
    // Arrange
    let w = World::start(&[]).await;
    w.parameters(json!([{"type": "Shell", "name": "setup", "script": "setup.sh"}]));
    w.emu.clear_requests();

    // Act
    let run = w.run(&[]);

    // Assert
    run.expect(2);
    assert!(run.stderr.contains("setup.sh"), "{}", run.stderr);
    assert_eq!(w.emu.requests().len(), 0, "{:?}", w.emu.requests());
}

/// A --template-name Image Builder would refuse: exit 2 before any request.
#[tokio::test(flavor = "multi_thread")]
async fn invalid_template_name_exits_2_without_a_request() {
    // Arrange
    let w = World::start(&[]).await;
    w.parameters(json!([{"type": "Shell", "inline": ["true"]}]));
    w.emu.clear_requests();

    // Act
    let run = w.run(&["--template-name", "bad name!"]);

    // Assert
    run.expect(2);
    assert!(
        run.stderr.contains("template name 'bad name!'"),
        "{}",
        run.stderr
    );
    assert_eq!(w.emu.requests().len(), 0);
}
