//! Cold vs cached digest of a 512 MiB file with 256 MiB of real bytes.
use std::io::Write;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t = tempfile::tempdir()?;
    let path = t.path().join("rootfs.img");
    let mut f = std::fs::File::create(&path)?;
    let chunk: Vec<u8> = (0..1u32 << 20).map(|i| (i * 31 % 251) as u8).collect();
    for _ in 0..256 {
        f.write_all(&chunk)?;
    }
    f.set_len(512 << 20)?;
    drop(f);
    let cache = mvm_plan::DigestCache::new(&t.path().join("cache"))?;
    let s = Instant::now();
    let (d, hit) = cache.sha256_file(&path)?;
    println!("cold:   {:?} hit={hit} {d}", s.elapsed());
    let s = Instant::now();
    let (d, hit) = cache.sha256_file(&path)?;
    println!("cached: {:?} hit={hit} {d}", s.elapsed());
    Ok(())
}
