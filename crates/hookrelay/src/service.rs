//! `hookrelay agent install-service` and `hookrelay tunnel install-service`:
//! write a systemd unit (Linux) or a launchd plist (macOS) that runs the
//! agent or the tunnel with the given arguments, keeping the token out of
//! the unit in a 0600 file, and print how to enable it. They start nothing.
//!
//! Every path written into a unit is absolute (systemd ignores a relative
//! `EnvironmentFile=`, and the service would start without its token), and
//! the files the unit needs are checked to be reachable under its
//! sandboxing (`DynamicUser`, `ProtectHome`, `PrivateTmp`): a binary under
//! `~/.cargo/bin` or `/tmp` would be invisible to the service.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::exit::ConfigError;

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Platform {
    Systemd,
    Launchd,
}

/// The flags of `install-service` beside the command's own.
#[derive(Args, Clone)]
pub(crate) struct ServiceFlags {
    /// The service's name [default: hookrelay-agent, or
    /// hookrelay-tunnel-<tunnel name>].
    #[arg(long)]
    service_name: Option<String>,
    /// systemd or launchd [default: this system's].
    #[arg(long, value_enum)]
    platform: Option<Platform>,
    /// Where the unit or plist goes [default: /etc/systemd/system, or
    /// ~/Library/LaunchAgents].
    #[arg(long)]
    unit_dir: Option<PathBuf>,
    /// Where the 0600 environment file with the token goes (systemd)
    /// [default: /etc/hookrelay].
    #[arg(long)]
    env_dir: Option<PathBuf>,
    /// The hookrelay binary the service runs [default: this one]. Under
    /// systemd it must be outside /home, /root, /run/user and /tmp, and
    /// readable by any user (e.g. `install -m 755 hookrelay /usr/local/bin/`).
    #[arg(long)]
    exe: Option<PathBuf>,
}

/// What a service runs, from the validated flags of its command.
pub(crate) struct Service {
    /// The name when `--service-name` is not given.
    pub(crate) default_name: String,
    /// The unit's `Description=`.
    pub(crate) description: &'static str,
    /// The subcommand and its flags, without the token.
    pub(crate) arguments: Vec<String>,
    /// `KEY.SECRET`, passed in the service's environment.
    pub(crate) token: String,
    /// Files the service reads, by the flag that names them (CA files).
    pub(crate) reads: Vec<(&'static str, PathBuf)>,
}

pub(crate) fn install(flags: ServiceFlags, service: Service) -> Result<()> {
    let platform = flags.platform.unwrap_or(if cfg!(target_os = "macos") {
        Platform::Launchd
    } else {
        Platform::Systemd
    });
    let name = flags.service_name.unwrap_or(service.default_name);
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(ConfigError(
            "--service-name may hold letters, digits, '-', '_' and '.' only".into(),
        )
        .into());
    }
    let exe = match &flags.exe {
        Some(exe) => absolute(exe)?,
        None => std::env::current_exe().context("cannot find this executable's path")?,
    };
    let (token, command) = (&service.token, &service.arguments);
    match platform {
        Platform::Systemd => {
            let unit_dir = absolute(
                &flags
                    .unit_dir
                    .unwrap_or_else(|| PathBuf::from("/etc/systemd/system")),
            )?;
            let env_dir = absolute(
                &flags
                    .env_dir
                    .unwrap_or_else(|| PathBuf::from("/etc/hookrelay")),
            )?;
            let env_file = env_dir.join(format!("{name}.env"));
            reachable_by_the_service(&exe, "the hookrelay binary", true)?;
            for (flag, file) in &service.reads {
                reachable_by_the_service(&absolute(file)?, flag, false)?;
            }
            write_private(&env_file, &format!("HOOKRELAY_TOKEN={token}\n"))?;
            let unit = systemd_unit(service.description, &exe, command, &env_file);
            let unit_file = unit_dir.join(format!("{name}.service"));
            write_file(&unit_file, &unit, 0o644)?;
            crate::outln!(
                "wrote {} and {} (mode 0600)",
                unit_file.display(),
                env_file.display()
            );
            crate::outln!("enable and start it with:");
            crate::outln!("  systemctl daemon-reload && systemctl enable --now {name}");
        }
        Platform::Launchd => {
            let unit_dir = match flags.unit_dir {
                Some(dir) => dir,
                None => home()?.join("Library/LaunchAgents"),
            };
            let label = format!("dev.hookrelay.{name}");
            let plist = launchd_plist(&label, &exe, command, token);
            let plist_file = unit_dir.join(format!("{label}.plist"));
            // The plist carries the token: readable by its owner only.
            write_private(&plist_file, &plist)?;
            crate::outln!("wrote {} (mode 0600)", plist_file.display());
            crate::outln!("load and start it with:");
            crate::outln!("  launchctl load -w {}", plist_file.display());
        }
    }
    Ok(())
}

/// `path` made absolute against the current directory.
fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot make {} absolute", path.display()))
}

/// Directories a systemd unit with `ProtectHome=yes` and `PrivateTmp=yes`
/// cannot see (or sees empty).
const HIDDEN_FROM_THE_SERVICE: &[(&str, &str)] = &[
    ("/home", "ProtectHome"),
    ("/root", "ProtectHome"),
    ("/run/user", "ProtectHome"),
    ("/tmp", "PrivateTmp"),
    ("/var/tmp", "PrivateTmp"),
];

/// Refuses (exit 64) a file the unit needs that its sandboxing hides, or
/// that `DynamicUser` (any unprivileged user) cannot read, or run when
/// `executable`.
fn reachable_by_the_service(path: &Path, what: &str, executable: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let fix = "install it where every user may read it, e.g. \
               `sudo install -m 755 hookrelay /usr/local/bin/` (then pass --exe /usr/local/bin/hookrelay)";
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    for (dir, setting) in HIDDEN_FROM_THE_SERVICE {
        if resolved.starts_with(dir) {
            let fix = if executable {
                fix
            } else {
                "put it under /etc/hookrelay"
            };
            return Err(ConfigError(format!(
                "{what} {} is under {dir}, which the unit's {setting}=yes hides from the \
                 service: {fix}",
                path.display()
            ))
            .into());
        }
    }
    let meta = std::fs::metadata(&resolved)
        .map_err(|e| ConfigError(format!("{what} {}: {e}", path.display())))?;
    let want = if executable { 0o005 } else { 0o004 };
    if meta.permissions().mode() & want != want {
        return Err(ConfigError(format!(
            "{what} {} is not {} by other users, as the unit's DynamicUser=yes needs: {}",
            path.display(),
            if executable {
                "readable and executable"
            } else {
                "readable"
            },
            if executable { fix } else { "chmod o+r it" },
        ))
        .into());
    }
    for dir in resolved.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        if meta.permissions().mode() & 0o001 == 0 {
            return Err(ConfigError(format!(
                "{what} {} is in {}, which other users cannot enter (DynamicUser=yes): {}",
                path.display(),
                dir.display(),
                if executable {
                    fix
                } else {
                    "chmod o+x that directory"
                },
            ))
            .into());
        }
    }
    Ok(())
}

fn systemd_unit(description: &str, exe: &Path, arguments: &[String], env_file: &Path) -> String {
    let mut exec = quote_systemd(&exe.display().to_string());
    for a in arguments {
        exec.push(' ');
        exec.push_str(&quote_systemd(a));
    }
    let mut unit = String::new();
    let _ = writeln!(unit, "[Unit]");
    let _ = writeln!(unit, "Description={description}");
    let _ = writeln!(unit, "Wants=network-online.target");
    let _ = writeln!(unit, "After=network-online.target");
    let _ = writeln!(unit);
    let _ = writeln!(unit, "[Service]");
    let _ = writeln!(unit, "EnvironmentFile={}", env_file.display());
    let _ = writeln!(unit, "ExecStart={exec}");
    let _ = writeln!(unit, "Restart=always");
    let _ = writeln!(unit, "RestartSec=2");
    let _ = writeln!(unit, "DynamicUser=yes");
    let _ = writeln!(unit, "NoNewPrivileges=yes");
    let _ = writeln!(unit, "ProtectSystem=strict");
    let _ = writeln!(unit, "ProtectHome=yes");
    let _ = writeln!(unit, "PrivateTmp=yes");
    let _ = writeln!(unit);
    let _ = writeln!(unit, "[Install]");
    let _ = writeln!(unit, "WantedBy=multi-user.target");
    unit
}

/// Double-quotes an `ExecStart` word, escaping what systemd would expand.
fn quote_systemd(word: &str) -> String {
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '$' => out.push_str("$$"),
            '%' => out.push_str("%%"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

fn launchd_plist(label: &str, exe: &Path, arguments: &[String], token: &str) -> String {
    let mut args = format!("    <string>{}</string>\n", xml(&exe.display().to_string()));
    for a in arguments {
        let _ = writeln!(args, "    <string>{}</string>", xml(a));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>{label}</string>
  <key>ProgramArguments</key>
  <array>
{args}  </array>
  <key>EnvironmentVariables</key>
  <dict>
    <key>HOOKRELAY_TOKEN</key>
    <string>{token}</string>
  </dict>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <true/>
</dict>
</plist>
"#,
        label = xml(label),
        token = xml(token),
    )
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set; pass --unit-dir")
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    write_file(path, contents, 0o600)
}

/// Creates (or truncates) `path` with `mode` from the start, so the token
/// is never readable by others, even for a moment.
fn write_file(path: &Path, contents: &str, mode: u32) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(mode);
        let mut file = options
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        // An existing file keeps its old mode through open: set it.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(contents.as_bytes())?;
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        let mut file = options.open(path)?;
        file.write_all(contents.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_start_words_are_quoted_for_systemd() {
        assert_eq!(quote_systemd("plain"), "\"plain\"");
        assert_eq!(quote_systemd("a b\"c$HOME%i"), "\"a b\\\"c$$HOME%%i\"");
    }

    #[test]
    fn plist_values_are_escaped() {
        let plist = launchd_plist(
            "dev.hookrelay.x",
            Path::new("/bin/h"),
            &["a<b".into()],
            "k.s&",
        );
        assert!(plist.contains("<string>a&lt;b</string>"));
        assert!(plist.contains("<string>k.s&amp;</string>"));
    }
}
