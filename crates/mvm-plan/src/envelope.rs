//! `plan.json` on disk: a bare plan (written by `mvmctl plan`, to review)
//! or a DSSE envelope around one (written by `mvmctl sign`). This is the
//! one reader of that file; whatever it holds is untrusted until
//! [`PlanFile::verify`] has checked a signature by a trusted key.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use mvm_keys::{PublicKey, Signer};

use crate::PlanError;
use crate::plan::Plan;
use crate::replay::{Refusal, hex};

/// DSSE payload type of an mvm plan.
pub const PAYLOAD_TYPE: &str = "application/vnd.mvm.plan.v1+json";

/// Larger than any plan mvm writes by orders of magnitude.
pub const MAX_BYTES: u64 = 1 << 20;

/// Signatures on one plan: each costs a verification per trusted key.
pub const MAX_SIGNATURES: usize = 16;

/// A DSSE envelope, field names as the DSSE specification spells them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 (standard, padded) of the plan's JSON bytes.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    pub keyid: String,
    pub sig: String,
}

/// A plan file as read: the exact payload bytes, and the envelope's
/// signatures when it is signed.
#[derive(Debug, Clone)]
pub struct PlanFile {
    pub path: PathBuf,
    payload: Vec<u8>,
    signatures: Vec<EnvelopeSignature>,
    signed: bool,
}

/// Who signed: a trusted key whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedBy {
    pub key_id: String,
    pub label: String,
}

/// A plan whose signatures were checked against the trusted keys.
#[derive(Debug, Clone)]
pub struct Verified {
    pub plan: Plan,
    /// SHA-256 of the payload: the plan's identity, whatever signs it.
    pub plan_sha256: String,
    /// Trusted keys whose signature verified; empty for an unsigned plan.
    pub signers: Vec<SignedBy>,
    /// Key ids of signatures by keys this host does not trust.
    pub untrusted: Vec<String>,
}

/// `PAE(type, body)` from the DSSE specification: what is signed.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        body.len()
    )
    .into_bytes();
    m.extend_from_slice(body);
    m
}

impl PlanFile {
    /// Reads `path` (a regular file, not a symlink, at most 1 MiB).
    pub fn read(path: &Path) -> Result<PlanFile, PlanError> {
        let (_, bytes) = crate::file::read_regular(path, MAX_BYTES)?;
        PlanFile::parse(path, &bytes)
    }

    /// `bytes` as a bare plan or an envelope; `path` names it in errors.
    /// A bare plan is parsed here; an envelope's payload only when verified.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<PlanFile, PlanError> {
        let json_err = |json_path: String, message: String| PlanError::Json {
            file: path.to_path_buf(),
            json_path,
            message,
            hint: "write plans with `mvmctl plan` and sign them with `mvmctl sign`".into(),
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| json_err(String::new(), e.to_string()))?;
        let is_envelope = value.get("payloadType").is_some();
        if !is_envelope {
            let file = PlanFile {
                path: path.to_path_buf(),
                payload: bytes.to_vec(),
                signatures: Vec::new(),
                signed: false,
            };
            file.plan()?;
            return Ok(file);
        }
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let env: Envelope = serde_path_to_error::deserialize(de)
            .map_err(|e| json_err(e.path().to_string(), e.into_inner().to_string()))?;
        if env.payload_type != PAYLOAD_TYPE {
            return Err(json_err(
                "payloadType".into(),
                format!(
                    "`{}` is not an mvm plan (expected `{PAYLOAD_TYPE}`)",
                    env.payload_type
                ),
            ));
        }
        if env.signatures.len() > MAX_SIGNATURES {
            return Err(json_err(
                "signatures".into(),
                format!(
                    "{} signatures; a plan carries at most {MAX_SIGNATURES}",
                    env.signatures.len()
                ),
            ));
        }
        for (i, s) in env.signatures.iter().enumerate() {
            if s.keyid.len() != 16
                || !s
                    .keyid
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(json_err(
                    format!("signatures[{i}].keyid"),
                    "must be a key id: 16 lowercase hex digits (`mvmctl key list` shows them)"
                        .into(),
                ));
            }
        }
        let payload = B64
            .decode(env.payload.as_bytes())
            .map_err(|e| json_err("payload".into(), format!("not base64: {e}")))?;
        Ok(PlanFile {
            path: path.to_path_buf(),
            payload,
            signatures: env.signatures,
            signed: true,
        })
    }

    /// Whether the file is an envelope (possibly with no signatures).
    pub fn is_signed(&self) -> bool {
        self.signed && !self.signatures.is_empty()
    }

    pub fn plan_sha256(&self) -> String {
        hex(&Sha256::digest(&self.payload))
    }

    /// The key ids the envelope's signatures claim.
    pub fn signature_key_ids(&self) -> Vec<String> {
        self.signatures.iter().map(|s| s.keyid.clone()).collect()
    }

    /// The plan in the payload, parsed strictly, without looking at
    /// signatures: for `mvmctl plan` output and for display after verify.
    pub fn plan(&self) -> Result<Plan, PlanError> {
        let err = |json_path: String, message: String| PlanError::Json {
            file: self.path.clone(),
            json_path,
            message,
            hint: "write plans with `mvmctl plan`; a signed plan cannot be edited".into(),
        };
        let de = &mut serde_json::Deserializer::from_slice(&self.payload);
        let plan: Plan = serde_path_to_error::deserialize(de)
            .map_err(|e| err(e.path().to_string(), e.into_inner().to_string()))?;
        plan.check_shape().map_err(|(p, m)| err(p, m))?;
        Ok(plan)
    }

    /// The envelope with one more signature, by `signer`, as file bytes.
    pub fn sign(&self, signer: &Signer) -> Result<Vec<u8>, PlanError> {
        let public = signer.public();
        let key_id = public.key_id();
        if self.signatures.iter().any(|s| s.keyid == key_id) {
            return Err(PlanError::AlreadySigned {
                file: self.path.clone(),
                key_id,
                label: public.label(),
            });
        }
        let sig = signer.sign(&pae(PAYLOAD_TYPE, &self.payload));
        let mut signatures = self.signatures.clone();
        signatures.push(EnvelopeSignature {
            keyid: key_id,
            sig: B64.encode(sig),
        });
        let env = Envelope {
            payload_type: PAYLOAD_TYPE.into(),
            payload: B64.encode(&self.payload),
            signatures,
        };
        let mut out = serde_json::to_vec_pretty(&env).expect("an envelope serialises");
        out.push(b'\n');
        Ok(out)
    }

    /// Checks every signature against `trusted`. A signature by a trusted
    /// key that does not verify refuses the plan outright (the payload or
    /// the signature was altered); signatures by other keys are reported,
    /// not trusted. `require_signed` refuses a plan no trusted key signed.
    pub fn verify(&self, trusted: &[PublicKey], require_signed: bool) -> Result<Verified, Refusal> {
        let message = pae(PAYLOAD_TYPE, &self.payload);
        let mut signers = Vec::new();
        let mut untrusted = Vec::new();
        for (i, s) in self.signatures.iter().enumerate() {
            let Ok(sig) = B64.decode(s.sig.as_bytes()) else {
                return Err(Refusal {
                    code: "A_BAD_SIGNATURE",
                    check: "signature".into(),
                    detail: format!("signatures[{i}].sig is not base64"),
                    hint: "get the plan again from its signer; a signed plan cannot be edited"
                        .into(),
                });
            };
            // The key id is a hint: a signature whose id names no trusted
            // key is still tried against every trusted key.
            let claimed = trusted.iter().find(|k| k.key_id() == s.keyid);
            let by = match claimed {
                Some(k) if k.verify(&message, &sig) => Some(k),
                Some(k) => {
                    return Err(Refusal {
                        code: "A_BAD_SIGNATURE",
                        check: "signature".into(),
                        detail: format!(
                            "signatures[{i}] by trusted key {} ({}) does not verify: the plan or the signature was altered after signing",
                            k.key_id(),
                            k.label()
                        ),
                        hint: "get the plan again from its signer; a signed plan cannot be edited"
                            .into(),
                    });
                }
                None => trusted.iter().find(|k| k.verify(&message, &sig)),
            };
            match by {
                Some(k) if !signers.iter().any(|x: &SignedBy| x.key_id == k.key_id()) => signers
                    .push(SignedBy {
                        key_id: k.key_id(),
                        label: k.label(),
                    }),
                Some(_) => {}
                None => untrusted.push(s.keyid.clone()),
            }
        }
        if signers.is_empty() && (require_signed || !self.signatures.is_empty()) {
            return Err(if self.signatures.is_empty() {
                Refusal {
                    code: "A_UNSIGNED",
                    check: "signature".into(),
                    detail: "the plan is not signed and this host's policy requires a signature"
                        .into(),
                    hint: "sign it with `mvmctl sign PLAN --key NAME` using a key in the policy's trusted_keys".into(),
                }
            } else {
                Refusal {
                    code: "A_UNTRUSTED_KEY",
                    check: "key trust".into(),
                    detail: format!(
                        "signed only by key(s) this host does not trust: {}",
                        untrusted.join(", ")
                    ),
                    hint: "add the signer's public key (`mvmctl key export NAME`) to trusted_keys in policy.toml".into(),
                }
            });
        }
        let plan = self.plan().map_err(|e| Refusal {
            code: "A_BAD_PLAN",
            check: "plan".into(),
            detail: e.to_string(),
            hint: "write plans with `mvmctl plan`".into(),
        })?;
        Ok(Verified {
            plan,
            plan_sha256: self.plan_sha256(),
            signers,
            untrusted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{launch, plan};

    fn ring() -> (tempfile::TempDir, mvm_keys::KeyRing) {
        let t = tempfile::tempdir().unwrap();
        let r = mvm_keys::KeyRing::new(&t.path().join("keys")).unwrap();
        (t, r)
    }

    fn bare() -> Vec<u8> {
        serde_json::to_vec_pretty(&plan(&launch())).unwrap()
    }

    #[test]
    fn sign_then_verify_names_the_signer() {
        let (_t, r) = ring();
        let alice = r.generate("alice").unwrap();
        let p = Path::new("plan.json");
        let f = PlanFile::parse(p, &bare()).unwrap();
        assert!(!f.is_signed());
        let signed = f.sign(&r.signer("alice").unwrap()).unwrap();
        let f2 = PlanFile::parse(p, &signed).unwrap();
        assert!(f2.is_signed());
        assert_eq!(f2.plan_sha256(), f.plan_sha256(), "identity is the payload");
        let v = f2.verify(std::slice::from_ref(&alice), true).unwrap();
        assert_eq!(v.signers[0].label, "alice");
        assert_eq!(v.plan, plan(&launch()));
        // Signing again with the same key is refused; another key adds one.
        assert!(matches!(
            f2.sign(&r.signer("alice").unwrap()),
            Err(PlanError::AlreadySigned { .. })
        ));
        let bob = r.generate("bob").unwrap();
        let f3 = PlanFile::parse(p, &f2.sign(&r.signer("bob").unwrap()).unwrap()).unwrap();
        let v = f3.verify(&[alice, bob], true).unwrap();
        assert_eq!(v.signers.len(), 2);
    }

    #[test]
    fn each_tampering_is_refused_with_its_own_code() {
        let (_t, r) = ring();
        let alice = r.generate("alice").unwrap();
        let p = Path::new("plan.json");
        let signed = PlanFile::parse(p, &bare())
            .unwrap()
            .sign(&r.signer("alice").unwrap())
            .unwrap();
        let env: Envelope = serde_json::from_slice(&signed).unwrap();
        let trusted = std::slice::from_ref(&alice);

        // A plan field changed inside the payload.
        let mut body = B64.decode(&env.payload).unwrap();
        let text = String::from_utf8(body.clone()).unwrap();
        body = text
            .replace("\"cpu_cores\": 2", "\"cpu_cores\": 9")
            .into_bytes();
        assert_ne!(body, B64.decode(&env.payload).unwrap());
        let mut e = env.clone();
        e.payload = B64.encode(&body);
        let f = PlanFile::parse(p, &serde_json::to_vec(&e).unwrap()).unwrap();
        assert_eq!(f.verify(trusted, true).unwrap_err().code, "A_BAD_SIGNATURE");

        // One signature byte flipped.
        let mut e = env.clone();
        let mut sig = B64.decode(&e.signatures[0].sig).unwrap();
        sig[10] ^= 1;
        e.signatures[0].sig = B64.encode(sig);
        let f = PlanFile::parse(p, &serde_json::to_vec(&e).unwrap()).unwrap();
        assert_eq!(f.verify(trusted, true).unwrap_err().code, "A_BAD_SIGNATURE");

        // The key no longer trusted.
        let f = PlanFile::parse(p, &signed).unwrap();
        assert_eq!(f.verify(&[], true).unwrap_err().code, "A_UNTRUSTED_KEY");
        assert_eq!(f.verify(&[], false).unwrap_err().code, "A_UNTRUSTED_KEY");

        // The key id relabelled: still found by trying the trusted keys.
        let mut e = env.clone();
        e.signatures[0].keyid = "0000000000000000".into(); // valid shape, names no key
        let f = PlanFile::parse(p, &serde_json::to_vec(&e).unwrap()).unwrap();
        assert_eq!(f.verify(trusted, true).unwrap().signers.len(), 1);

        // Signatures stripped.
        let mut e = env.clone();
        e.signatures.clear();
        let f = PlanFile::parse(p, &serde_json::to_vec(&e).unwrap()).unwrap();
        assert_eq!(f.verify(trusted, true).unwrap_err().code, "A_UNSIGNED");
        assert!(f.verify(trusted, false).unwrap().signers.is_empty());

        // Another payload type.
        let mut e = env.clone();
        e.payload_type = "application/vnd.in-toto+json".into();
        let err = PlanFile::parse(p, &serde_json::to_vec(&e).unwrap()).unwrap_err();
        assert!(err.to_string().contains("payloadType"), "{err}");
    }

    #[test]
    fn unknown_fields_and_bad_shapes_name_the_json_path() {
        let mut v: serde_json::Value = serde_json::from_slice(&bare()).unwrap();
        v["resources"]["gpus"] = 1.into();
        let err = PlanFile::parse(Path::new("p.json"), v.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("at `resources.gpus`"), "{err}");
        let err = PlanFile::parse(Path::new("p.json"), b"{\"payloadType\": 1}").unwrap_err();
        assert!(err.to_string().contains("payloadType"), "{err}");

        // Digests are SHA-256 hex, whatever else serde would accept (a
        // multi-byte character once made a message slice panic).
        for field in ["rootfs_sha256", "id"] {
            let mut v: serde_json::Value = serde_json::from_slice(&bare()).unwrap();
            v["image"][field] = format!("{}é", "a".repeat(15)).into();
            let err = PlanFile::parse(Path::new("p.json"), v.to_string().as_bytes()).unwrap_err();
            assert!(
                err.to_string().contains(&format!("at `image.{field}`")),
                "{err}"
            );
        }
    }

    #[test]
    fn hostile_envelopes_are_refused_at_parse() {
        let (_t, r) = ring();
        r.generate("alice").unwrap();
        let p = Path::new("plan.json");
        let signed = PlanFile::parse(p, &bare())
            .unwrap()
            .sign(&r.signer("alice").unwrap())
            .unwrap();
        let env: Envelope = serde_json::from_slice(&signed).unwrap();

        // A key id that would drive a terminal ("signed by: alice ... ok").
        let mut e = env.clone();
        e.signatures[0].keyid = "\r\u{1b}[2K  signed by: alice\nok".into();
        let err = PlanFile::parse(p, &serde_json::to_vec(&e).unwrap()).unwrap_err();
        assert!(err.to_string().contains("signatures[0].keyid"), "{err}");

        // Unbounded signature work.
        let mut e = env.clone();
        e.signatures = vec![e.signatures[0].clone(); MAX_SIGNATURES + 1];
        let err = PlanFile::parse(p, &serde_json::to_vec(&e).unwrap()).unwrap_err();
        assert!(err.to_string().contains("at most 16"), "{err}");

        // A signature that is not base64 says so.
        let mut e = env.clone();
        e.signatures[0].sig = "not base64!".into();
        let f = PlanFile::parse(p, &serde_json::to_vec(&e).unwrap()).unwrap();
        let alice = r.public("alice").unwrap();
        let refusal = f.verify(&[alice], true).unwrap_err();
        assert_eq!(refusal.code, "A_BAD_SIGNATURE");
        assert!(refusal.detail.contains("not base64"), "{refusal}");
    }

    #[test]
    fn reading_refuses_links_and_oversized_files() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real.json");
        std::fs::write(&real, bare()).unwrap();
        let link = t.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(PlanFile::read(&real).is_ok());
        let err = PlanFile::read(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let big = t.path().join("big.json");
        std::fs::write(&big, vec![b' '; (MAX_BYTES + 1) as usize]).unwrap();
        assert!(
            PlanFile::read(&big)
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
    }

    #[test]
    fn pae_matches_the_dsse_definition() {
        assert_eq!(pae("t", b"ab"), b"DSSEv1 1 t 2 ab".to_vec());
    }
}
