//! Log setup: `tracing` with text (default) or JSON lines (`--log-format-json`), verbosity from
//! klog's `-v=N`: 0–1 info, 2–4 debug, 5 and above trace. Log statements never carry secrets or
//! tokens; the types that hold them redact themselves.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

pub fn level(verbosity: u8) -> LevelFilter {
    match verbosity {
        0..=1 => LevelFilter::INFO,
        2..=4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

pub fn init(verbosity: u8, json: bool) {
    // Dependencies (hyper, h2, rustls) are chatty below warn and say nothing users need.
    let ours = filter_fn(|meta| {
        meta.target().starts_with("akv_csi_provider") || *meta.level() <= tracing::Level::WARN
    });
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(verbosity >= 5);
    let layer = if json {
        fmt.json().flatten_event(true).boxed()
    } else {
        fmt.boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(level(verbosity)).with_filter(ours))
        .try_init();
}
