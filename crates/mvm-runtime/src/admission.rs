//! Admission at `up`: the operator's policy and, when given, a signed plan
//! checked against the image and boot files before anything boots
//! (`mvm-plan` decides; this module gathers the inputs and records the
//! decision in the audit trail).

use std::path::Path;

use mvm_audit::{Decision, Event};
use mvm_plan::{Admitted, LaunchFiles, PlanFile, Policy, TrustStores};

use crate::error::RuntimeError;
use crate::launch::Launch;
use crate::state::ImageRef;
use crate::up::BootAssets;

/// What `up` is asked to admit.
#[derive(Debug, Clone)]
pub struct AdmissionRequest {
    pub policy: Policy,
    /// The plan given with `--plan`, read but not yet verified.
    pub plan: Option<PlanFile>,
}

impl AdmissionRequest {
    /// The policy in `home` (or the default) and no plan.
    pub fn from_home(home: &Path) -> Result<AdmissionRequest, RuntimeError> {
        Ok(AdmissionRequest {
            policy: Policy::load_or_default(home)?,
            plan: None,
        })
    }
}

/// Runs admission for `instance`, recording the decision when the policy
/// audits. A refusal is recorded and then returned as the error.
pub fn admit(
    home: &Path,
    instance: &str,
    req: &AdmissionRequest,
    launch: &Launch,
    launch_json_sha256: &str,
    image: &ImageRef,
    assets: &BootAssets,
) -> Result<Admitted, RuntimeError> {
    let mut files = launch_files(image, assets);
    files.launch_json_sha256 = Some(launch_json_sha256.to_string());
    let stores = TrustStores::open(home)?;
    let now = time::OffsetDateTime::now_utc();
    let outcome = mvm_plan::admit(&req.policy, req.plan.as_ref(), launch, &files, &stores, now);
    if req.policy.audit {
        let recorder = crate::audit::Recorder::open(home)?;
        let plan_sha256 = match &outcome {
            Ok(a) => a.plan_sha256.clone(),
            Err(_) => req.plan.as_ref().map(PlanFile::plan_sha256),
        };
        if let Ok(a) = &outcome
            && let Some(sha) = &a.plan_sha256
        {
            let signers = a
                .signers
                .iter()
                .map(|s| format!("{} ({})", s.key_id, s.label));
            recorder.record(
                Some(instance),
                &Event::PlanVerified {
                    plan_sha256: sha.clone(),
                    signers: signers.collect(),
                },
            )?;
        }
        let (decision, check, detail) = match &outcome {
            Ok(_) => (Decision::Admitted, None, None),
            Err(r) => (
                Decision::Refused,
                Some(r.code.to_string()),
                Some(format!("{}: {}", r.check, r.detail)),
            ),
        };
        recorder.record(
            Some(instance),
            &Event::Admission {
                decision,
                check,
                detail,
                plan_sha256,
                ir_hash: launch.ir_hash.clone(),
            },
        )?;
    }
    outcome.map_err(|refusal| RuntimeError::Refused {
        plan: req.plan.as_ref().map(|p| p.path.clone()),
        refusal,
    })
}

/// The files a launch of `image` with `assets` boots, as a plan pins them.
pub fn launch_files(image: &ImageRef, assets: &BootAssets) -> LaunchFiles {
    LaunchFiles {
        image_id: image.id.clone(),
        rootfs: image.rootfs.clone(),
        image_lock: image.lock.clone(),
        launch_json: image.launch_json.clone(),
        launch_json_sha256: None,
        kernel: assets.kernel.clone(),
        initramfs: assets.initrd.clone(),
    }
}

/// The plan for launching `image` with `assets` now: every pinned file
/// hashed (through the host's digest cache, which admission then hits).
pub fn make_plan(
    home: &Path,
    image: &ImageRef,
    assets: &BootAssets,
    window: mvm_plan::Window,
    nonce: Option<String>,
) -> Result<mvm_plan::Plan, RuntimeError> {
    let launch = crate::launch::load(&image.launch_json)?;
    let files = launch_files(image, assets);
    let Some(lock) = &files.image_lock else {
        return Err(RuntimeError::BadInput {
            detail: format!("image {} has no image.lock", image.id),
            hint: "plans are for images built with `mvmctl build`".into(),
        });
    };
    let stores = TrustStores::open(home)?;
    let h = |p: &Path| stores.digests.sha256_file(p).map(|(d, _)| d);
    let image_digests = mvm_plan::ImageDigests {
        id: image.id.clone(),
        rootfs_sha256: h(&files.rootfs)?,
        image_lock_sha256: h(lock)?,
        launch_json_sha256: h(&files.launch_json)?,
    };
    let boot = mvm_plan::BootDigests {
        kernel_sha256: h(&files.kernel)?,
        initramfs_sha256: h(&files.initramfs)?,
    };
    Ok(mvm_plan::Plan::new(
        &launch,
        image_digests,
        boot,
        time::OffsetDateTime::now_utc(),
        window,
        nonce,
    ))
}
