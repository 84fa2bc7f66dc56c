//! `helm safe-upgrade` / `helm safe-rollback`: one binary, two commands.
//!
//! Entry point only: pick the command, run it, exit with its documented code.

use helm_safe_upgrade::{commands, complete};

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let plugin_name = helm_safe_upgrade::env::get(helm_safe_upgrade::env::HELM_PLUGIN_NAME);
    let mode = commands::mode(args.first(), plugin_name.as_deref());
    // `plugin.complete` runs `helm-safe-upgrade __complete WORDS...` (helm's dynamic
    // completion for plugins):
    // answered before clap parses anything, and never with an error.
    if args.get(1).is_some_and(|a| a == "__complete") {
        let words: Vec<String> = args[2..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
        complete::main(mode, &words, &mut std::io::stdout());
        std::process::exit(0);
    }
    // A live run takes the terminal's foreground (terminal.rs): given back on every way out.
    helm_safe_upgrade::terminal::restore_on_panic();
    let code = commands::run(mode, args, &helm_safe_upgrade::printer::Printer::stdio());
    helm_safe_upgrade::terminal::restore();
    std::process::exit(code);
}
