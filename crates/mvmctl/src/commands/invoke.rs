//! `mvmctl invoke`: call a function entrypoint of a running instance.

use std::io::Read;

use anyhow::Context;
use mvm_runtime::InstanceName;
use mvm_runtime::call::{self, InvokeOutcome};
use mvm_runtime::input;

/// Call a function in a running instance and print its JSON result.
///
/// Arguments are the function's keyword arguments. With `--input`, a value
/// that parses as JSON is taken as JSON (`n=5` is a number), anything else
/// as a string (`name=ari`). A function that raises exits 1 and prints the
/// error as JSON on stderr: {"kind", "message", "traceback"}.
#[derive(Debug, clap::Args)]
pub struct InvokeArgs {
    /// The instance to call.
    pub name: String,
    /// The entrypoint to call (default: the primary one).
    #[arg(long, short = 'e')]
    pub entrypoint: Option<String>,
    /// A keyword argument KEY=VALUE; repeat for more.
    #[arg(long = "input", short = 'i', value_name = "KEY=VALUE", conflicts_with_all = ["json", "stdin"])]
    pub inputs: Vec<String>,
    /// All keyword arguments as one JSON object.
    #[arg(long, value_name = "OBJECT", conflicts_with = "stdin")]
    pub json: Option<String>,
    /// Read the keyword arguments as a JSON object from standard input.
    #[arg(long)]
    pub stdin: bool,
}

pub fn run(args: InvokeArgs) -> anyhow::Result<i32> {
    let name = InstanceName::parse(&args.name)?;
    let kwargs = if let Some(text) = &args.json {
        input::from_json_object(text, "--json")?
    } else if args.stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the arguments from stdin")?;
        input::from_json_object(&text, "stdin")?
    } else {
        input::from_pairs(&args.inputs)?
    };
    let home = mvm_runtime::home::mvm_home();
    match call::invoke(&home, &name, args.entrypoint, kwargs)? {
        InvokeOutcome::Value(value) => {
            println!("{value}");
            Ok(0)
        }
        InvokeOutcome::Error {
            kind,
            message,
            traceback,
        } => {
            let error =
                serde_json::json!({"kind": kind, "message": message, "traceback": traceback});
            eprintln!("{error}");
            Ok(1)
        }
    }
}
