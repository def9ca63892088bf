//! Any bytes into the plan reader (`mvmctl verify`, `sign` and `up
//! --plan` read a plan.json through it): it never panics, verification of
//! whatever it accepts never panics, and an accepted plan reads back from
//! its own serialisation to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("plan.json");
    let Ok(file) = mvm_plan::PlanFile::parse(path, data) else {
        return;
    };
    let _ = file.verify(&[], false);
    if let Ok(plan) = file.plan() {
        let bytes = serde_json::to_vec(&plan).unwrap();
        let again = mvm_plan::PlanFile::parse(path, &bytes)
            .and_then(|f| f.plan())
            .unwrap_or_else(|e| panic!("an accepted plan does not read back: {e}"));
        assert_eq!(again, plan);
    }
});
