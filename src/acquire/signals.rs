//! Ctrl-C and `kill`: SIGINT, SIGTERM and SIGHUP set a flag the recording loop polls, so every way of
//! stopping ends the same way, with the file written completely.

use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Installs handlers that set the returned flag on SIGINT, SIGTERM or SIGHUP.
pub fn stop_flag() -> io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, flag.clone())?;
    }
    Ok(flag)
}
