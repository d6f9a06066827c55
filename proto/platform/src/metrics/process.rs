//! The standard Prometheus process series, read when `/metrics` is scraped:
//!
//! | series | type | from |
//! | --- | --- | --- |
//! | `process_cpu_seconds_total` | counter | `/proc/self/stat` utime + stime |
//! | `process_resident_memory_bytes` | gauge | `/proc/self/stat` rss × page size |
//! | `process_virtual_memory_bytes` | gauge | `/proc/self/stat` vsize |
//! | `process_start_time_seconds` | gauge | boot time (`/proc/stat`) + starttime |
//! | `process_threads` | gauge | `/proc/self/stat` num_threads |
//! | `process_open_fds` | gauge | entries of `/proc/self/fd` |
//! | `process_max_fds` | gauge | soft `Max open files` of `/proc/self/limits` |
//!
//! Names, types and meanings are those of the official clients (client_golang),
//! so the usual dashboards and alerts apply. [`super::render`] appends them
//! to every page it renders: the services' admin servers and the gateway's
//! `/metrics` alike, with no registration by the caller.
//!
//! Linux only (the `procfs` crate reads `/proc`); elsewhere, and for any file
//! that cannot be read, the series are left out rather than reported as 0.
//! An unlimited `Max open files` leaves `process_max_fds` out too.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};

/// The process series of the calling process, as a [`Collector`].
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessCollector;

/// One reading of the process's figures; `None` for what could not be read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessSample {
    pub cpu_seconds: Option<f64>,
    pub resident_memory_bytes: Option<u64>,
    pub virtual_memory_bytes: Option<u64>,
    pub start_time_seconds: Option<f64>,
    pub threads: Option<i64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

impl ProcessSample {
    /// Reads the calling process's figures now.
    #[cfg(target_os = "linux")]
    pub fn read() -> Self {
        use procfs::{
            WithCurrentSystemInfo,
            process::{LimitValue, Process},
        };

        let mut sample = Self::default();
        let me = match Process::myself() {
            Ok(me) => me,
            Err(error) => {
                tracing::debug!(%error, "cannot read /proc/self");
                return sample;
            }
        };
        match me.stat() {
            Ok(stat) => {
                let ticks = procfs::ticks_per_second() as f64;
                sample.cpu_seconds = Some((stat.utime + stat.stime) as f64 / ticks);
                sample.resident_memory_bytes = Some(stat.rss_bytes().get());
                sample.virtual_memory_bytes = Some(stat.vsize);
                sample.threads = Some(stat.num_threads);
                sample.start_time_seconds = procfs::boot_time_secs()
                    .map(|boot| boot as f64 + stat.starttime as f64 / ticks)
                    .inspect_err(|error| tracing::debug!(%error, "cannot read the boot time"))
                    .ok();
            }
            Err(error) => tracing::debug!(%error, "cannot read /proc/self/stat"),
        }
        sample.open_fds = me
            .fd_count()
            .map(|count| count as u64)
            .inspect_err(|error| tracing::debug!(%error, "cannot count /proc/self/fd"))
            .ok();
        sample.max_fds = match me.limits() {
            Ok(limits) => match limits.max_open_files.soft_limit {
                LimitValue::Value(max) => Some(max),
                LimitValue::Unlimited => None,
            },
            Err(error) => {
                tracing::debug!(%error, "cannot read /proc/self/limits");
                None
            }
        };
        sample
    }

    /// Not Linux: nothing to read.
    #[cfg(not(target_os = "linux"))]
    pub fn read() -> Self {
        Self::default()
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sample = ProcessSample::read();
        if let Some(seconds) = sample.cpu_seconds {
            // A counter: the encoder adds the `_total` suffix.
            let counter = ConstCounter::new(seconds);
            counter.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                counter.metric_type(),
            )?)?;
        }
        if let Some(seconds) = sample.start_time_seconds {
            let gauge = ConstGauge::new(seconds);
            gauge.encode(encoder.encode_descriptor(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                None,
                gauge.metric_type(),
            )?)?;
        }
        // Whole numbers: written as integers.
        let whole = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let gauges: [(&str, &str, Option<i64>); 5] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                sample.resident_memory_bytes.map(whole),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                sample.virtual_memory_bytes.map(whole),
            ),
            (
                "process_threads",
                "Number of OS threads in the process.",
                sample.threads,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                sample.open_fds.map(whole),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                sample.max_fds.map(whole),
            ),
        ];
        for (name, help, value) in gauges {
            let Some(value) = value else { continue };
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}
