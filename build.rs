//! Compiles `proto/service.proto` with the pure-Rust `protox` compiler, so no system `protoc` is
//! needed on a fresh machine; and stamps the build date `--version` prints, in the Go provider's
//! format (`date +%Y-%m-%d-%H:%M`, UTC), from `SOURCE_DATE_EPOCH` when set (reproducible builds).

use std::time::{SystemTime, UNIX_EPOCH};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/service.proto");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let fds = protox::compile(["proto/service.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => text.trim().parse()?,
        Err(_) => SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
    };
    println!("cargo:rustc-env=AKV_BUILD_DATE={}", build_date(epoch));
    Ok(())
}

/// `YYYY-MM-DD-HH:MM` in UTC (days to civil date after Howard Hinnant's algorithm).
fn build_date(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let (hour, minute) = ((epoch % 86_400) / 3600, (epoch % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}-{hour:02}:{minute:02}")
}
