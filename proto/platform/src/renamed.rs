//! Settings that changed their name. Every duration is now written with its
//! unit in the value (`GRPC_TIMEOUT=3s`, see
//! [`crate::settings::parse_duration`]) under a name without one, and a
//! setting two processes share has one name in both (the deadline of
//! outgoing gRPC calls is `GRPC_TIMEOUT` in the gateway and the order service
//! alike). The old names (`CATALOG_TIMEOUT_MS=3000`, ...) are still read: a
//! process started with one behaves as before, and says at start which name
//! to use instead.
//!
//! How: before the command line is parsed, each old variable that is set,
//! while its new one is not, becomes the new flag with the old unit appended
//! (`--grpc-timeout=3000ms`), so clap checks and reads it like any value.

use std::ffi::OsString;

/// The unit an old name carried in its suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Millis,
    Secs,
    Hours,
    Days,
    /// Not a duration: the value is passed on as it is.
    Same,
}

impl Unit {
    fn suffix(self) -> &'static str {
        match self {
            Self::Millis => "ms",
            Self::Secs => "s",
            Self::Hours => "h",
            Self::Days => "d",
            Self::Same => "",
        }
    }
}

/// One renamed setting: its old environment variable, its new one and the
/// new flag (clap's long name).
#[derive(Debug, Clone, Copy)]
pub struct Renamed {
    pub old: &'static str,
    pub new: &'static str,
    pub flag: &'static str,
    pub unit: Unit,
}

impl Renamed {
    pub const fn new(old: &'static str, new: &'static str, flag: &'static str, unit: Unit) -> Self {
        Self {
            old,
            new,
            flag,
            unit,
        }
    }
}

/// Renamed settings every process has (`DrainSettings`).
pub const EVERY_PROCESS: &[Renamed] = &[Renamed::new(
    "DRAIN_DELAY_SECS",
    "DRAIN_DELAY",
    "drain-delay",
    Unit::Secs,
)];

/// Renamed settings of `platform::settings::ServiceSettings` (both gRPC
/// services).
pub const SERVICE_SETTINGS: &[Renamed] = &[
    Renamed::new(
        "HEALTH_CHECK_INTERVAL_MS",
        "HEALTH_CHECK_INTERVAL",
        "health-check-interval",
        Unit::Millis,
    ),
    Renamed::new(
        "SHUTDOWN_GRACE_SECS",
        "SHUTDOWN_GRACE",
        "shutdown-grace",
        Unit::Secs,
    ),
];

/// `args` with a flag added for each renamed variable set under its old name
/// only (read through `env`), and what to tell the operator about each old
/// name found (log it once logging is up).
pub fn apply(
    args: impl IntoIterator<Item = OsString>,
    renamed: &[Renamed],
    env: impl Fn(&str) -> Option<String>,
) -> (Vec<OsString>, Vec<String>) {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let mut warnings = Vec::new();
    for setting in renamed {
        let Some(value) = env(setting.old) else {
            continue;
        };
        if env(setting.new).is_some() {
            warnings.push(format!(
                "{} is ignored: {} is set; remove {}",
                setting.old, setting.new, setting.old
            ));
            continue;
        }
        let value = format!("{}{}", value.trim(), setting.unit.suffix());
        warnings.push(format!(
            "{} is an old name, read as {}={value}; rename it (the old name will go)",
            setting.old, setting.new
        ));
        args.push(format!("--{}={value}", setting.flag).into());
    }
    (args, warnings)
}

/// [`apply`] on the process's own command line and environment.
pub fn apply_to_process(renamed: &[Renamed]) -> (Vec<OsString>, Vec<String>) {
    apply(std::env::args_os(), renamed, |name| {
        std::env::var(name).ok()
    })
}

/// Logs what [`apply`] found (call once tracing is set up).
pub fn warn(warnings: &[String]) {
    for warning in warnings {
        tracing::warn!("{warning}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Renamed] = &[
        Renamed::new(
            "GRPC_TIMEOUT_MS",
            "GRPC_TIMEOUT",
            "grpc-timeout",
            Unit::Millis,
        ),
        Renamed::new("RETENTION_DAYS", "RETENTION", "retention", Unit::Days),
        Renamed::new("BALANCE_OLD", "BALANCE", "balance", Unit::Same),
    ];

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }
    }

    #[test]
    fn an_old_name_becomes_the_new_flag_with_its_unit_and_a_warning() {
        let (args, warnings) = apply(
            ["gateway".into()],
            TABLE,
            env(&[("GRPC_TIMEOUT_MS", "3000"), ("RETENTION_DAYS", "30")]),
        );
        assert_eq!(
            args,
            ["gateway", "--grpc-timeout=3000ms", "--retention=30d"]
                .map(OsString::from)
                .to_vec()
        );
        assert_eq!(warnings.len(), 2);
        assert!(
            warnings[0].contains("read as GRPC_TIMEOUT=3000ms"),
            "{warnings:?}"
        );
    }

    #[test]
    fn the_new_name_wins_and_the_old_one_is_reported_as_ignored() {
        let (args, warnings) = apply(
            ["gateway".into()],
            TABLE,
            env(&[("GRPC_TIMEOUT_MS", "3000"), ("GRPC_TIMEOUT", "2s")]),
        );
        assert_eq!(args, [OsString::from("gateway")]);
        assert_eq!(
            warnings,
            ["GRPC_TIMEOUT_MS is ignored: GRPC_TIMEOUT is set; remove GRPC_TIMEOUT_MS"]
        );
    }

    #[test]
    fn unset_old_names_change_nothing_and_non_durations_pass_as_they_are() {
        let (args, warnings) = apply(["x".into()], TABLE, env(&[]));
        assert_eq!((args.len(), warnings.len()), (1, 0));
        let (args, _) = apply(["x".into()], TABLE, env(&[("BALANCE_OLD", "false")]));
        assert_eq!(args[1], OsString::from("--balance=false"));
    }
}
