//! The standard `process_*` metrics (the names Prometheus' own client libraries give
//! them, so existing dashboards read them): CPU time, memory, file descriptors, threads
//! and start time, read from `/proc/self` at each scrape with the `procfs` crate. A value
//! that cannot be read is left out of that scrape, never reported as 0.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Reads `/proc/self` at every scrape.
#[derive(Debug)]
pub(crate) struct ProcessCollector;

/// What one scrape read.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ProcessFigures {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
    pub threads: Option<u64>,
}

impl ProcessFigures {
    /// This process, now.
    pub(crate) fn read() -> ProcessFigures {
        let Ok(me) = procfs::process::Process::myself() else {
            return ProcessFigures::default();
        };
        let ticks = procfs::ticks_per_second() as f64;
        let stat = me.stat().ok();
        let boot = procfs::boot_time_secs().ok();
        ProcessFigures {
            cpu_seconds: stat.as_ref().map(|s| (s.utime + s.stime) as f64 / ticks),
            resident_bytes: stat
                .as_ref()
                .map(|s| s.rss.saturating_mul(procfs::page_size())),
            virtual_bytes: stat.as_ref().map(|s| s.vsize),
            open_fds: me.fd_count().ok().map(|n| n as u64),
            max_fds: me
                .limits()
                .ok()
                .and_then(|l| match l.max_open_files.soft_limit {
                    procfs::process::LimitValue::Value(n) => Some(n),
                    procfs::process::LimitValue::Unlimited => None,
                }),
            start_time_seconds: match (&stat, boot) {
                (Some(s), Some(boot)) => Some(boot as f64 + s.starttime as f64 / ticks),
                _ => None,
            },
            threads: stat
                .as_ref()
                .and_then(|s| u64::try_from(s.num_threads).ok()),
        }
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let f = ProcessFigures::read();
        if let Some(v) = f.cpu_seconds {
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                c.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                f.resident_bytes.map(|v| v as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                f.virtual_bytes.map(|v| v as f64),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                f.open_fds.map(|v| v as f64),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                f.max_fds.map(|v| v as f64),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                f.start_time_seconds,
            ),
            (
                "process_threads",
                "Number of OS threads in the process",
                f.threads.map(|v| v as f64),
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let g = ConstGauge::new(v);
                g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_read_as_it_is() {
        let before = ProcessFigures::read();
        // Burn some CPU and memory that /proc must then show.
        let block: Vec<u8> = vec![7; 32 << 20];
        let mut x = 0u64;
        for i in 0..30_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box((x, &block));
        let after = ProcessFigures::read();
        assert!(
            after.cpu_seconds > before.cpu_seconds,
            "{before:?} {after:?}"
        );
        assert!(after.resident_bytes.unwrap() >= 32 << 20, "{after:?}");
        assert!(after.open_fds.unwrap() >= 3);
        assert!(after.threads.unwrap() >= 1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = after.start_time_seconds.unwrap();
        assert!(
            started <= now + 1.0 && started > now - 24.0 * 3600.0,
            "{started}"
        );
    }
}
