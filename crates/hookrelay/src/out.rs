//! Writing to stdout without panicking on a closed pipe: `hookrelay events
//! list | head` closes stdout after ten lines, and `println!` would panic
//! (exit 101). [`outln!`] ends the process quietly instead, as `cat` does.

use std::io::Write;

/// Writes one line to stdout; a closed pipe ends the process with status 0
/// (no one is left to read the rest), any other write error is reported on
/// stderr.
pub(crate) fn line(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
    {
        quiet_exit_on_broken_pipe(&err);
        eprintln!("error: cannot write to stdout: {err}");
    }
}

/// Writes without a newline (a prompt, or a line built in parts).
pub(crate) fn text(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        quiet_exit_on_broken_pipe(&err);
        eprintln!("error: cannot write to stdout: {err}");
    }
}

fn quiet_exit_on_broken_pipe(err: &std::io::Error) {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
}

/// `println!` that ends quietly on a closed pipe.
#[macro_export]
macro_rules! outln {
    () => { $crate::out::line(format_args!("")) };
    ($($arg:tt)*) => { $crate::out::line(format_args!($($arg)*)) };
}

/// `print!` that ends quietly on a closed pipe.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::text(format_args!($($arg)*)) };
}
