//! `RunHook`: runs the generated `/etc/mvm/hooks/<phase>.sh` with `/bin/sh`
//! and the configured environment, in the app directory.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use mvm_proto::{AgentError, ErrorKind, HookOutcome, HookPhase, Response};

use crate::layout::Layout;
use crate::process;

/// How much of a hook's combined output is returned: enough to show why it
/// failed; the whole output is in the instance log.
const OUTPUT_TAIL_BYTES: usize = 8 * 1024;

pub fn run(
    layout: &Layout,
    env: &BTreeMap<String, String>,
    phase: HookPhase,
    timeout: Option<Duration>,
) -> Result<Response, AgentError> {
    let script = layout.hook_script(phase);
    if !script.exists() {
        return Ok(Response::HookResult(HookOutcome {
            exit: None,
            output_tail: String::new(),
        }));
    }
    let argv = vec!["/bin/sh".to_string(), script.to_string_lossy().into_owned()];
    let mut command = process::command(&argv, env, &layout.app_dir());
    let output = Mutex::new(Vec::new());
    let collect = |chunk: Vec<u8>| {
        let mut out = output.lock().unwrap_or_else(|p| p.into_inner());
        out.extend_from_slice(&chunk);
        // Keep only the tail while collecting, so a chatty hook costs
        // bounded memory.
        if out.len() > 2 * OUTPUT_TAIL_BYTES {
            let cut = out.len() - OUTPUT_TAIL_BYTES;
            out.drain(..cut);
        }
        for line in String::from_utf8_lossy(&chunk).lines() {
            crate::log!("{phase}: {line}");
        }
    };
    let exit =
        process::run(&mut command, &[], timeout, &collect, &collect).map_err(|e| AgentError {
            kind: ErrorKind::SpawnFailed,
            message: format!("cannot run the {phase} hook {}: {e}", script.display()),
        })?;
    let output = output.into_inner().unwrap_or_else(|p| p.into_inner());
    let tail = &output[output.len().saturating_sub(OUTPUT_TAIL_BYTES)..];
    Ok(Response::HookResult(HookOutcome {
        exit: Some(exit),
        output_tail: String::from_utf8_lossy(tail).into_owned(),
    }))
}
