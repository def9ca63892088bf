//! End to end, as a user runs it: an addon attached with `addons=[...]`
//! is bundled at `/app/.mvm/addons/<name>/`, and its `before_start` hook
//! runs before the app's and can use the addon's files. Real image, real
//! microVM (QEMU; TCG on hosts without usable KVM), as in e2e_examples.rs.

#[path = "common/vm_env.rs"]
mod vm_env;

use vm_env::{Env, serial};

/// examples/python/addon-app: the addon's hook runs its own script, which
/// copies the addon's `message.txt` to /run/addon-stamp; the app's hook
/// fails the boot unless that file is there (so the addon's ran first),
/// and the function returns its content.
#[test]
fn an_addons_hook_runs_first_and_uses_the_addons_files() {
    let _g = serial();
    let env = Env::new();
    env.deploy("examples/python/addon-app/app.py", "addon-app");
    let result = env.ok(&["invoke", "addon-app"]);
    assert_eq!(result.trim_end(), r#""stamped by the stamp addon""#);
    let listing = env.ok(&["exec", "addon-app", "--", "ls", "/app/.mvm/addons/stamp"]);
    assert_eq!(
        listing.split_whitespace().collect::<Vec<_>>(),
        ["message.txt", "stamp.sh"]
    );
    env.ok(&["down", "addon-app"]);
}
