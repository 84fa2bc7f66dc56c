//! `helm safe-upgrade` / `helm safe-rollback`: one binary, two commands.
//!
//! Entry point only: pick the command, run it, exit with its documented code.

use helm_safe_upgrade::{commands, complete};

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let plugin_name = std::env::var("HELM_PLUGIN_NAME").ok();
    let mode = commands::mode(args.first(), plugin_name.as_deref());
    // `plugin.complete` runs `helm-safe-upgrade __complete WORDS...` (helm-facts §2.8):
    // answered before clap parses anything, and never with an error.
    if args.get(1).is_some_and(|a| a == "__complete") {
        let words: Vec<String> = args[2..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
        complete::main(mode, &words, &mut std::io::stdout());
        std::process::exit(0);
    }
    // Unlocked handles: other threads (the signal watcher, progress) write to stderr
    // too, and a lock held for the whole run would block them.
    let code = commands::run(mode, args, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}
