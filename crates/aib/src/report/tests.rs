//! Each backend's output, captured and compared byte for byte.

use std::sync::Arc;

use time::macros::datetime;

use super::*;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(datetime!(2026-11-28 12:00:00 UTC)))
}

fn github(files: GitHubFiles) -> (GitHub, Capture, Arc<ManualClock>) {
    let out = Capture::new();
    let clock = clock();
    let reporter = GitHub::new(out.writer(), files)
        .with_clock(clock.clone())
        .with_delimiter(|| "ghadelimiter_TEST".to_owned());
    (reporter, out, clock)
}

fn azure(summary: Option<std::path::PathBuf>) -> (AzurePipelines, Capture, Arc<ManualClock>) {
    let out = Capture::new();
    let clock = clock();
    (
        AzurePipelines::new(out.writer(), summary).with_clock(clock.clone()),
        out,
        clock,
    )
}

fn plain_terminal() -> (Terminal, Capture, Arc<ManualClock>) {
    let out = Capture::new();
    let clock = clock();
    (
        Terminal::new(out.writer(), TerminalMode::Plain).with_clock(clock.clone()),
        out,
        clock,
    )
}

/// An error with a cause, as a step would return it.
#[derive(Debug, thiserror::Error)]
#[error("getting a token for client {client} failed")]
struct TokenError {
    client: String,
    #[source]
    source: std::io::Error,
}

/// Runs the same events through any backend: a step, a group, progress, an annotation.
fn story(r: &dyn Reporter, clock: &ManualClock) {
    r.step_start("upload-scripts");
    {
        let _g = r.group("Upload scripts/uploads/linux");
        let id = r.progress_start("Uploading", Unit::Items);
        for done in 1..=4 {
            r.progress(id, done, 4, &format!("f{done}.sh"));
        }
        r.progress_finish(id, "1 uploaded, 3 unchanged");
    }
    r.annotate(&Annotation::warning("name, with: colon\nand 100% more").at(
        "parameters/sbx,1:x.json",
        Some(12),
        Some(5),
    ));
    clock.advance(time::Duration::milliseconds(4_200));
    r.step_end("upload-scripts", StepStatus::Succeeded);
}

/// The GitHub log of a whole step is exactly the workflow commands toolkit would write.
#[test]
fn github_log_renders_workflow_commands_exactly() {
    let (r, out, clock) = github(GitHubFiles::default());
    story(&r, &clock);
    r.finish().unwrap();
    assert_eq!(
        out.text(),
        "▶ upload-scripts\n\
         ::group::Upload scripts/uploads/linux\n\
         Uploading...\n\
         Uploading: 25% (1/4) f1.sh\n\
         Uploading: 50% (2/4) f2.sh\n\
         Uploading: 75% (3/4) f3.sh\n\
         Uploading: 1 uploaded, 3 unchanged\n\
         ::endgroup::\n\
         ::warning file=parameters/sbx%2C1%3Ax.json,line=12,col=5::name, with: colon%0Aand 100%25 more\n\
         ✔ upload-scripts succeeded in 4.2s\n"
    );
}

/// The Azure Pipelines log of a whole step is exactly the logging commands the agent expects.
#[test]
fn azure_log_renders_logging_commands_exactly() {
    let (r, out, clock) = azure(None);
    story(&r, &clock);
    r.finish().unwrap();
    assert_eq!(
        out.text(),
        "▶ upload-scripts\n\
         ##[group]Upload scripts/uploads/linux\n\
         Uploading...\n\
         ##vso[task.setprogress value=25;]Uploading\n\
         Uploading: 25% (1/4) f1.sh\n\
         ##vso[task.setprogress value=50;]Uploading\n\
         Uploading: 50% (2/4) f2.sh\n\
         ##vso[task.setprogress value=75;]Uploading\n\
         Uploading: 75% (3/4) f3.sh\n\
         ##vso[task.setprogress value=100;]Uploading\n\
         Uploading: 1 uploaded, 3 unchanged\n\
         ##[endgroup]\n\
         ##vso[task.logissue type=warning;sourcepath=parameters/sbx,1:x.json;linenumber=12;columnnumber=5;]name, with: colon%0Aand 100% more\n\
         ✔ upload-scripts succeeded in 4.2s\n"
    );
}

/// Without a TTY, the terminal prints one timestamped line per event, indented inside groups.
#[test]
fn plain_terminal_prints_timestamped_lines() {
    let (r, out, clock) = plain_terminal();
    story(&r, &clock);
    r.output("templateName", "img-2026").unwrap();
    r.finish().unwrap();
    assert_eq!(
        out.text(),
        "[12:00:00] ▶ upload-scripts\n\
         [12:00:00] ▸ Upload scripts/uploads/linux\n\
         [12:00:00]   Uploading...\n\
         [12:00:00]   Uploading: 25% (1/4) f1.sh\n\
         [12:00:00]   Uploading: 50% (2/4) f2.sh\n\
         [12:00:00]   Uploading: 75% (3/4) f3.sh\n\
         [12:00:00]   Uploading: 1 uploaded, 3 unchanged\n\
         [12:00:00] warning: parameters/sbx,1:x.json:12:5: name, with: colon\n\
         [12:00:00] and 100% more\n\
         [12:00:04] ✔ upload-scripts succeeded in 4.2s\n\
         [12:00:04] output templateName=img-2026\n"
    );
}

/// Outputs go to `GITHUB_OUTPUT` in heredoc form, multi-line values intact.
#[test]
fn github_outputs_are_heredocs_in_the_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("output");
    let (r, out, _) = github(GitHubFiles {
        output: Some(path.clone()),
        step_summary: None,
    });
    r.output("templateName", "aib-sbx-2026-11-28-12-00-00")
        .unwrap();
    r.output("log", "line one\nline two\r\n100%: done").unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "templateName<<ghadelimiter_TEST\naib-sbx-2026-11-28-12-00-00\nghadelimiter_TEST\n\
         log<<ghadelimiter_TEST\nline one\nline two\r\n100%: done\nghadelimiter_TEST\n"
    );
    assert_eq!(out.text(), "", "outputs do not touch the log");
}

/// A value containing the delimiter could forge outputs, so it is refused and nothing is written.
#[test]
fn github_output_containing_its_delimiter_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("output");
    let (r, _, _) = github(GitHubFiles {
        output: Some(path.clone()),
        step_summary: None,
    });
    let err = r.output("x", "a\nghadelimiter_TEST\nevil=1").unwrap_err();
    assert!(matches!(err, ReportError::DelimiterInValue { .. }), "{err}");
    assert!(!path.exists());
    let err = r.output("bad name", "v").unwrap_err();
    assert!(matches!(err, ReportError::OutputName { .. }), "{err}");
}

/// Without `GITHUB_OUTPUT`, outputs fall back to the `set-output` command, escaped.
#[test]
fn github_output_without_file_uses_the_command() {
    let (r, out, _) = github(GitHubFiles::default());
    r.output("id", "a,b:c\n%").unwrap();
    assert_eq!(out.text(), "::set-output name=id::a,b:c%0A%25\n");
}

/// Azure Pipelines outputs are escaped `setvariable` commands marked as outputs.
#[test]
fn azure_outputs_are_setvariable_commands() {
    let (r, out, _) = azure(None);
    r.output("imageVersionId", "/subscriptions/x;y]z\nnext")
        .unwrap();
    assert_eq!(
        out.text(),
        "##vso[task.setvariable variable=imageVersionId;isOutput=true;]/subscriptions/x;y]z%0Anext\n"
    );
}

/// The GitHub summary is appended to `GITHUB_STEP_SUMMARY`, masked, each part ending a line.
#[test]
fn github_summary_is_appended_to_the_summary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.md");
    std::fs::write(&path, "earlier step\n").unwrap();
    let (r, _, _) = github(GitHubFiles {
        output: None,
        step_summary: Some(path.clone()),
    });
    r.secret(&Secret::new("hunter2"));
    r.summary("## Build\n| a | hunter2 |").unwrap();
    r.summary("done\n").unwrap();
    r.summary("").unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "earlier step\n## Build\n| a | *** |\ndone\n"
    );
}

/// The Azure Pipelines summary is written once at the end and attached with `uploadsummary`.
#[test]
fn azure_summary_is_written_and_uploaded_at_finish() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aib-run").join("Image Builder.md");
    let (r, out, _) = azure(Some(path.clone()));
    r.summary("## Build").unwrap();
    r.summary("ok").unwrap();
    assert!(!path.exists(), "nothing is attached before the end");
    r.finish().unwrap();
    r.finish().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "## Build\nok\n");
    assert_eq!(
        out.text(),
        format!("##vso[task.uploadsummary]{}\n", path.display())
    );
}

/// A secret is announced once, before anything else, and masked in every later line, in
/// annotations, outputs and errors, on GitHub.
#[test]
fn github_secret_is_announced_first_and_masked_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let (r, out, _) = github(GitHubFiles {
        output: Some(output.clone()),
        step_summary: None,
    });
    r.secret(&Secret::new("p%ss\nw0rd"));
    r.secret(&Secret::new("p%ss\nw0rd"));
    r.info("token p%ss then w0rd");
    r.annotate(&Annotation::error("bad w0rd").at("w0rd.json", Some(1), None));
    r.output("sas", "sig=w0rd").unwrap();
    let err = TokenError {
        client: "app".into(),
        source: std::io::Error::other("server said: secret w0rd rejected"),
    };
    report_error(&r, &err, Some("check the w0rd"));
    assert_eq!(
        out.text(),
        "::add-mask::p%25ss%0Aw0rd\n\
         ::add-mask::p%25ss\n\
         ::add-mask::w0rd\n\
         token *** then ***\n\
         ::error file=***.json,line=1::bad ***\n\
         ::error::getting a token for client app failed%0A  Caused by: server said: secret *** rejected%0Ahint: check the ***\n"
    );
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "sas<<ghadelimiter_TEST\nsig=***\nghadelimiter_TEST\n"
    );
}

/// On Azure Pipelines a secret is announced with `setsecret` and masked in issues and outputs.
#[test]
fn azure_secret_is_announced_first_and_masked_everywhere() {
    let (r, out, _) = azure(None);
    r.secret(&Secret::new("s;cr]t"));
    r.annotate(&Annotation::error("refused s;cr]t"));
    r.output("key", "s;cr]t").unwrap();
    r.info("##vso[task.setvariable variable=x]s;cr]t");
    assert_eq!(
        out.text(),
        "##vso[task.setsecret]s;cr]t\n\
         ##vso[task.logissue type=error;]refused ***\n\
         ##vso[task.setvariable variable=key;isOutput=true;]***\n\
         ##\u{200B}vso[task.setvariable variable=x]***\n"
    );
}

/// Groups closed by guards nest: the CI sees one group, closed once, even when the work fails.
#[test]
fn nested_groups_close_on_error() {
    fn work(r: &dyn Reporter) -> Result<(), std::io::Error> {
        let _outer = r.group("Deploy");
        let _inner = r.group("Gallery");
        r.info("creating");
        Err(std::io::Error::other("409 Conflict"))
    }
    let (r, out, _) = github(GitHubFiles::default());
    let err = work(&r).unwrap_err();
    report_error(&r, &err, None);
    assert_eq!(
        out.text(),
        "::group::Deploy\n▸ Gallery\ncreating\n::endgroup::\n::error::409 Conflict\n"
    );
    let (r, out, _) = azure(None);
    let _ = work(&r);
    assert_eq!(
        out.text(),
        "##[group]Deploy\n▸ Gallery\ncreating\n##[endgroup]\n"
    );
}

/// A panic inside a group still closes it (the guard's Drop runs while unwinding).
#[test]
fn group_closes_when_the_work_panics() {
    let (r, out, _) = github(GitHubFiles::default());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _g = Group::open(&r, "Upload");
        panic!("boom");
    }));
    assert!(result.is_err());
    r.info("after");
    assert_eq!(out.text(), "::group::Upload\n::endgroup::\nafter\n");
}

/// `--output json` prints one masked document with outputs, annotations, steps and outcome.
#[test]
fn json_prints_one_masked_document_at_finish() {
    let out = Capture::new();
    let log = Capture::new();
    let clock = clock();
    let r = Json::new(out.writer(), log.writer()).with_clock(clock.clone());
    story(&r, &clock);
    r.output("templateName", "img-1").unwrap();
    r.outcome(serde_json::json!({"template": "img-1", "token": "tok3n"}));
    r.summary("done").unwrap();
    r.secret(&Secret::new("tok3n"));
    assert_eq!(out.text(), "", "nothing on stdout before the end");
    r.finish().unwrap();
    r.finish().unwrap();
    assert_eq!(
        out.text(),
        r#"{
  "outcome": {
    "template": "img-1",
    "token": "***"
  },
  "outputs": {
    "templateName": "img-1"
  },
  "annotations": [
    {
      "level": "warning",
      "message": "name, with: colon\nand 100% more",
      "file": "parameters/sbx,1:x.json",
      "line": 12,
      "col": 5
    }
  ],
  "steps": [
    {
      "name": "upload-scripts",
      "status": "succeeded"
    }
  ],
  "summary": "done\n"
}
"#
    );
    assert_eq!(
        log.text(),
        "▶ upload-scripts\nwarning: name, with: colon\nand 100% more\n\
         ✔ upload-scripts succeeded in 4.2s\n",
        "progress is hidden, people still see lines"
    );
}

/// Secrets registered from many threads at once are all masked, and each announced once.
#[test]
fn secrets_register_from_any_thread() {
    let (r, out, _) = github(GitHubFiles::default());
    let r: Arc<dyn Reporter> = Arc::new(r);
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let r = Arc::clone(&r);
            std::thread::spawn(move || {
                r.secret(&Secret::new(format!("secret-{i}")));
                r.info(&format!("using secret-{i}"));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let text = out.text();
    for i in 0..8 {
        assert_eq!(
            text.matches(&format!("::add-mask::secret-{i}\n")).count(),
            1,
            "{text}"
        );
    }
    assert_eq!(text.matches("using ***\n").count(), 8, "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("using secret")),
        "{text}"
    );
}

/// `--output json` wins, then GitHub, then Azure Pipelines, else a terminal, coloured only on a
/// TTY without `NO_COLOR`.
#[test]
fn flavor_follows_the_environment() {
    let gh = Environment {
        github_actions: true,
        azure_pipelines: true,
        ..Default::default()
    };
    assert_eq!(flavor(OutputFormat::Json, &gh), Flavor::Json);
    assert_eq!(flavor(OutputFormat::Text, &gh), Flavor::GitHub);
    let ado = Environment {
        azure_pipelines: true,
        ..Default::default()
    };
    assert_eq!(flavor(OutputFormat::Text, &ado), Flavor::AzurePipelines);
    let tty = Environment {
        stderr_is_tty: true,
        ..Default::default()
    };
    assert_eq!(
        flavor(OutputFormat::Text, &tty),
        Flavor::Terminal {
            interactive: true,
            color: true
        }
    );
    let no_color = Environment {
        stderr_is_tty: true,
        no_color: true,
        ..Default::default()
    };
    assert_eq!(
        flavor(OutputFormat::Text, &no_color),
        Flavor::Terminal {
            interactive: true,
            color: false
        }
    );
    assert_eq!(
        flavor(OutputFormat::Text, &Environment::default()),
        Flavor::Terminal {
            interactive: false,
            color: false
        }
    );
}

/// With bars drawn elsewhere, the interactive terminal still prints lines (masked) and closes
/// indicators.
#[test]
fn interactive_terminal_prints_lines_above_bars() {
    let out = Capture::new();
    let r = Terminal::new(
        out.writer(),
        TerminalMode::Interactive {
            target: indicatif::ProgressDrawTarget::hidden(),
            color: false,
        },
    );
    r.secret(&Secret::new("k3y"));
    let id = r.progress_start("Uploading", Unit::Bytes);
    r.progress(id, 10, 20, "a.sh k3y");
    r.status(id, "waiting");
    r.info("key k3y");
    r.progress_finish(id, "2 uploaded");
    r.finish().unwrap();
    assert_eq!(out.text(), "key ***\nUploading: 2 uploaded\n");
}

/// Parallel tokio tasks share one `Arc<dyn Reporter>`; every indicator ends exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_tasks_share_one_reporter() {
    let out = Capture::new();
    let r: Arc<dyn Reporter> = Arc::new(Terminal::new(out.writer(), TerminalMode::Plain));
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let r = Arc::clone(&r);
            tokio::spawn(async move {
                let id = r.progress_start(&format!("blob-{i}"), Unit::Bytes);
                for done in 0..=8 {
                    r.progress(id, done, 8, "");
                    tokio::task::yield_now().await;
                }
                r.progress_finish(id, "uploaded");
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let text = out.text();
    for i in 0..4 {
        assert_eq!(
            text.matches(&format!("blob-{i}: uploaded\n")).count(),
            1,
            "{text}"
        );
        assert_eq!(
            text.matches(&format!("blob-{i}: ")).count(),
            4,
            "3 quarters + end: {text}"
        );
    }
}

/// Colour is used only when asked for: `error:` is painted, the message is not.
#[test]
fn terminal_paints_levels_only_with_colour() {
    let run = |color| {
        let out = Capture::new();
        let target = indicatif::ProgressDrawTarget::hidden();
        let r = Terminal::new(out.writer(), TerminalMode::Interactive { target, color });
        r.annotate(&Annotation::error("quota exceeded"));
        out.text()
    };
    assert_eq!(run(false), "error: quota exceeded\n");
    let painted = run(true);
    assert!(
        painted.starts_with('\u{1b}') && painted.ends_with("\u{1b}[0m quota exceeded\n"),
        "{painted:?}"
    );
}

/// Azure Pipelines has no notice issue: a notice is a plain line with its position; errors
/// without a position carry only their type.
#[test]
fn azure_notice_is_a_plain_line_with_its_position() {
    let (r, out, _) = azure(None);
    r.annotate(&Annotation::notice("using cached image").at("p.json", Some(4), None));
    r.annotate(&Annotation::notice("no position"));
    r.annotate(&Annotation::warning("slow"));
    assert_eq!(
        out.text(),
        "notice: p.json:4: using cached image\n\
         notice: no position\n\
         ##vso[task.logissue type=warning;]slow\n"
    );
}

/// GitHub annotations leave out properties they do not have.
#[test]
fn github_annotation_leaves_out_unknown_properties() {
    let (r, out, _) = github(GitHubFiles::default());
    r.annotate(&Annotation::notice("n"));
    r.annotate(&Annotation::error("e").at("f.json", None, None));
    r.annotate(&Annotation::warning("w").at("f.json", Some(2), None));
    assert_eq!(
        out.text(),
        "::notice::n\n::error file=f.json::e\n::warning file=f.json,line=2::w\n"
    );
}

/// A wait's estimated percentage is a `task.setprogress` command on Azure Pipelines, sent
/// only when it changes (a build polled every few seconds does not repeat it), and nothing on
/// the other backends.
#[test]
fn azure_percent_is_setprogress_once_per_change() {
    let (r, out, _) = azure(None);
    let id = ProgressId(0);
    r.percent(id, 20, "Customizing");
    r.percent(id, 20, "Customizing");
    r.percent(id, 85, "Distributing");
    assert_eq!(
        out.text(),
        "##vso[task.setprogress value=20;]Customizing\n\
         ##vso[task.setprogress value=85;]Distributing\n"
    );
    let (t, text, _) = plain_terminal();
    t.percent(id, 20, "Customizing");
    assert_eq!(text.text(), "");
}
