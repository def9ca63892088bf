//! Checks that need the source bundle as well as the IR. (Hook fetches,
//! `W_HOOK_UNPINNED_FETCH`, need only the IR: `mvm_ir::validate` reports them.)

pub mod lockfile;
