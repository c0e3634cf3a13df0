//! `berth sync` (one resync with a live display, a summary and the HTML report) and
//! `berth run` (the long-running loop, in [`berth::pipeline::runner`]).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::Global;

pub(crate) async fn run(g: &Global, config_path: &Path, dry_run: bool) -> anyhow::Result<ExitCode> {
    use berth::pipeline::display::{Live, Target};
    use berth::pipeline::resync::Progress;
    use berth::pipeline::runner::Setup;

    let setup = Setup::prepare(config_path, &g.plugins, dry_run).await?;
    let progress = Arc::new(Progress::default());
    let target = Target::stderr();
    let width = match &target {
        Target::Term(t) => usize::from(t.width()),
        Target::Plain(_) => berth::pipeline::display::MIN_WIDTH,
    };
    let live = Live::start(progress.clone(), setup.mapping.clone(), target);
    let started = std::time::Instant::now();
    let outcome = setup.resync(dry_run, progress.clone(), None, None).await;
    let report = match outcome {
        Ok(r) => r,
        Err(e) => {
            // The error is printed once, by `main`, in the frame's place.
            live.finish("").await;
            match setup.write_failed_report(&e.to_string(), started.elapsed(), dry_run, &progress) {
                Ok(path) => eprintln!("report: {}", path.display()),
                Err(w) => eprintln!("warning: cannot write the report: {w}"),
            }
            return Err(e.into());
        }
    };
    let mut summary = berth::pipeline::display::summary(&report, &setup.mapping, width);
    if dry_run {
        summary.push('\n');
        summary.push_str(&report.push.render());
    }
    live.finish(&summary).await;
    match setup.write_report(&report) {
        Ok(path) => eprintln!("report: {}", path.display()),
        Err(e) => eprintln!("warning: cannot write the report: {e}"),
    }
    Ok(if report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
