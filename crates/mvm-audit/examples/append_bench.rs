//! Append latency: `cargo run -p mvm-audit --release --example append_bench [N]`.
//! Each append is lock + write + fdatasync + signed head (stage, fsync, rename),
//! so the figure is dominated by the filesystem's sync cost.

use std::time::Instant;

use ed25519_dalek::SigningKey;
use mvm_audit::{AuditLog, Event, verify};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = SigningKey::from_bytes(&[42u8; 32]);
    let vk = key.verifying_key();
    let log = AuditLog::open(dir.path(), key).expect("open");
    let mut us: Vec<u128> = Vec::with_capacity(n);
    for i in 0..n {
        let argv = ["python".to_string(), "-m".into(), format!("job{i}")];
        let ev = Event::exec(&argv, Some(0), i as u64);
        let t = Instant::now();
        log.append(Some("bench"), &ev).expect("append");
        us.push(t.elapsed().as_micros());
    }
    us.sort_unstable();
    let pct = |p: usize| us[(us.len() * p / 100).min(us.len() - 1)];
    println!(
        "appends={n} p50={}us p99={}us max={}us (dir {})",
        pct(50),
        pct(99),
        us[us.len() - 1],
        dir.path().display()
    );
    let t = Instant::now();
    let r = verify(dir.path(), &vk).expect("verify");
    assert!(r.ok() && r.records == n, "{:?}", r.problems);
    println!("verify of {n} records: {}ms", t.elapsed().as_millis());
}
