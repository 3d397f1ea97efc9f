//! `tilc cache`: lists or clears the on-disk kernel cache (`tilc::cache` says what is in it).

use std::process::ExitCode;
use tilc::Cache;
use tilc::cache::EntryKind;

/// Show or clear the kernel cache: autotuning results and compiled-kernel records.
///
/// The cache lives in `$TILC_CACHE_DIR` when set, else in `tilc` under the user's cache folder
/// (`~/.cache/tilc` on Linux).
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  tilc cache list\n  tilc cache list -v\n  tilc cache clear\n  TILC_CACHE_DIR=/tmp/tc tilc cache dir")]
pub struct CacheArgs {
    #[command(subcommand)]
    pub action: CacheAction,
}

/// What to do with the cache.
#[derive(clap::Subcommand)]
pub enum CacheAction {
    /// List the entries: tuning results (best values per shape bucket), then compiled kernels.
    List {
        /// Also print each entry's file and body (trial times; the kernel's VM program).
        #[arg(short, long)]
        verbose: bool,
    },
    /// Delete every entry.
    Clear,
    /// Print the cache folder.
    Dir,
}

/// Runs `tilc cache`.
pub fn run(args: CacheArgs) -> ExitCode {
    let cache = match Cache::open_default() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match args.action {
        CacheAction::Dir => {
            println!("{}", cache.dir().display());
            ExitCode::SUCCESS
        }
        CacheAction::Clear => match cache.clear() {
            Ok(n) => {
                println!("removed {n} entr{} from {}", if n == 1 { "y" } else { "ies" }, cache.dir().display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        CacheAction::List { verbose } => {
            let (entries, broken) = match cache.entries() {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            println!("cache: {} ({} entries)", cache.dir().display(), entries.len());
            let field = |e: &tilc::cache::Entry, n: &str| e.field(n).unwrap_or("?").to_string();
            for e in &entries {
                let defines = e.field("defines").filter(|d| !d.is_empty()).map(|d| format!(" -D {d}")).unwrap_or_default();
                match e.kind {
                    EntryKind::Tuning => println!(
                        "tuned   {} ({}){defines} on {}, bucket [{}]: best {} ({} us)",
                        field(e, "kernel"),
                        field(e, "source"),
                        field(e, "target"),
                        field(e, "bucket"),
                        field(e, "best"),
                        field(e, "time_us")
                    ),
                    EntryKind::Kernel => println!("kernel  {} ({}) on {}: {}", field(e, "kernel"), field(e, "source"), field(e, "target"), field(e, "values")),
                }
                if verbose {
                    println!("        {} ({} bytes, {})", e.path.display(), e.bytes, field(e, "compiler"));
                    for line in e.body.lines() {
                        println!("        | {line}");
                    }
                }
            }
            for b in &broken {
                println!("unreadable {}", b.display());
            }
            ExitCode::SUCCESS
        }
    }
}
