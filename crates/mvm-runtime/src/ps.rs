//! `mvmctl ps`: every instance with its observed status and footprint.

use std::path::Path;

use serde::Serialize;

use crate::error::RuntimeError;
use crate::state::{self, now_unix_ms};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PsRow {
    pub name: String,
    /// starting, running, stopping, dead, or unknown (unreadable record).
    pub status: String,
    pub image: Option<String>,
    pub image_id: Option<String>,
    /// Seconds since the instance became ready.
    pub uptime_s: Option<u64>,
    pub vcpus: Option<u32>,
    pub memory_mb: Option<u32>,
    /// Resident memory of the QEMU process, while it runs.
    pub rss_mb: Option<u64>,
    /// CPU time QEMU has used, while it runs.
    pub cpu_s: Option<f64>,
    /// Network mode: none, bridge or host.
    pub network: Option<String>,
    /// Guest ports published on the host.
    pub ports: Vec<crate::network::Published>,
}

pub fn ps(home: &Path) -> Result<Vec<PsRow>, RuntimeError> {
    let rows = state::list(home)?
        .into_iter()
        .map(|(dir, st)| match st {
            Ok(st) => {
                let observed = st.observe();
                let qemu = st.qemu.filter(|q| q.is_alive());
                let running = observed == state::Observed::Running;
                PsRow {
                    name: dir.name.to_string(),
                    status: observed.as_str().to_string(),
                    image: Some(st.image.name.clone()),
                    image_id: Some(st.image.id.clone()),
                    uptime_s: st
                        .ready_unix_ms
                        .filter(|_| running)
                        .map(|t| now_unix_ms().saturating_sub(t) / 1000),
                    vcpus: Some(st.persist.vm.vcpus),
                    memory_mb: Some(st.persist.vm.memory_mb),
                    rss_mb: qemu.and_then(|q| q.rss_kib()).map(|k| k / 1024),
                    cpu_s: qemu.and_then(|q| q.cpu_time()).map(|d| d.as_secs_f64()),
                    network: Some(match &st.persist.vm.network {
                        crate::network::NetworkConfig::None => "none".to_string(),
                        crate::network::NetworkConfig::User { mode, .. } => {
                            mode.as_str().to_string()
                        }
                    }),
                    ports: st.published().to_vec(),
                }
            }
            // A directory without a readable record: being created, or damaged.
            Err(_) => PsRow {
                name: dir.name.to_string(),
                status: "unknown".into(),
                image: None,
                image_id: None,
                uptime_s: None,
                vcpus: None,
                memory_mb: None,
                rss_mb: None,
                cpu_s: None,
                network: None,
                ports: Vec::new(),
            },
        })
        .collect();
    Ok(rows)
}

/// The table `mvmctl ps` prints.
pub fn render_table(rows: &[PsRow]) -> String {
    let dash = || "-".to_string();
    let mut lines = vec![
        [
            "NAME", "STATUS", "IMAGE", "UPTIME", "CPUS", "MEM", "RSS", "CPU", "NET", "PORTS",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for r in rows {
        lines.push(vec![
            r.name.clone(),
            r.status.clone(),
            r.image.clone().unwrap_or_else(dash),
            r.uptime_s.map(human_duration).unwrap_or_else(dash),
            r.vcpus.map(|v| v.to_string()).unwrap_or_else(dash),
            r.memory_mb.map(|m| format!("{m}M")).unwrap_or_else(dash),
            r.rss_mb.map(|m| format!("{m}M")).unwrap_or_else(dash),
            r.cpu_s.map(|s| format!("{s:.1}s")).unwrap_or_else(dash),
            r.network.clone().unwrap_or_else(dash),
            if r.ports.is_empty() {
                dash()
            } else {
                r.ports
                    .iter()
                    .map(|p| {
                        format!(
                            "{}:{}->{}/{}",
                            p.host_address,
                            p.host_port,
                            p.guest_port,
                            crate::network::proto_str(p.proto)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            },
        ]);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(65), "1m5s");
        assert_eq!(human_duration(7322), "2h2m");
        assert_eq!(human_duration(90000), "1d1h");
    }

    #[test]
    fn table_aligns_and_dashes_unknowns() {
        let row = PsRow {
            name: "a".into(),
            status: "unknown".into(),
            image: None,
            image_id: None,
            uptime_s: None,
            vcpus: None,
            memory_mb: None,
            rss_mb: None,
            cpu_s: None,
            network: None,
            ports: Vec::new(),
        };
        let t = render_table(&[row]);
        assert_eq!(
            t.lines().nth(1).unwrap(),
            "a     unknown  -      -       -     -    -    -    -    -"
        );
    }

    #[test]
    fn empty_home_lists_nothing() {
        let home = tempfile::tempdir().unwrap();
        assert!(ps(home.path()).unwrap().is_empty());
    }
}
