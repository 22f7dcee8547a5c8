//! 1,000 small files and one 256 MiB file, with the process's peak memory from the kernel.

use crate::support::{World, md5, run_measured};

/// Everything arrives with the right MD5 and the peak resident memory of the process stays
/// under 64 MiB (the large file is streamed from disk in blocks); a re-run uploads nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_files_and_256_mib_arrive_in_bounded_memory() {
    // Arrange
    let w = World::start().await;
    for i in 0..1000u32 {
        let size = 1024 + (i as usize * 7919) % (19 * 1024);
        let content: Vec<u8> = (0..size).map(|j| ((i as usize + j) % 253) as u8).collect();
        w.write(&format!("small/{:02}/{i:04}.ps1", i % 10), &content);
    }
    let big_path = w.up().join("big.bin");
    {
        use std::io::Write as _;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big_path).unwrap());
        let chunk: Vec<u8> = (0..1024 * 1024u32).map(|j| (j % 241) as u8).collect();
        for k in 0..256u32 {
            let mut c = chunk.clone();
            c[0] = k as u8;
            f.write_all(&c).unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();

    // Act
    let (code, peak_kib, stdout, stderr) =
        run_measured(w.command(&["--output", "json"]), dir.path());

    // Assert
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["outcome"]["uploaded"], 1001);
    assert!(
        peak_kib < 64 * 1024,
        "peak RSS {} MiB is over 64 MiB",
        peak_kib / 1024
    );
    let blobs = w.blobs().await;
    assert_eq!(blobs.len(), 1001);
    let big = std::fs::read(&big_path).unwrap();
    assert_eq!(blobs["big.bin"].md5, Some(md5(&big)));
    assert_eq!(blobs["big.bin"].size, 256 * 1024 * 1024);
    drop(big);
    let sample = std::fs::read(w.up().join("small/07/0577.ps1")).unwrap();
    assert_eq!(blobs["small/07/0577.ps1"].md5, Some(md5(&sample)));
    eprintln!("peak RSS: {} MiB", peak_kib / 1024);

    // A second run uploads nothing.
    let again = w.run(&[]);
    again.expect(0);
    assert!(
        again.stderr.contains("0 uploaded, 1001 unchanged"),
        "{}",
        again.stderr
    );
}
