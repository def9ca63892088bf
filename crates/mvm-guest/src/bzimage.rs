//! Turning a compressed x86 `bzImage` (Debian's `vmlinuz`) into the
//! uncompressed ELF `vmlinux` that QEMU's `microvm` boots through PVH.
//!
//! Debian's cloud kernel is built with `CONFIG_KERNEL_LZ4`, so the payload is
//! an LZ4 "legacy" stream (what `lz4 -l` writes) followed by the kernel
//! build's 4-byte little-endian uncompressed size.

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};

/// Offsets and magic numbers of the x86 boot protocol (Documentation/arch/x86/boot.rst).
const SETUP_SECTS_OFFSET: usize = 0x1f1;
const HEADER_MAGIC_OFFSET: usize = 0x202;
const HEADER_MAGIC: &[u8; 4] = b"HdrS";
const PROTOCOL_VERSION_OFFSET: usize = 0x206;
const PAYLOAD_OFFSET_OFFSET: usize = 0x248;
const PAYLOAD_LENGTH_OFFSET: usize = 0x24c;
/// `payload_offset`/`payload_length` exist from boot protocol 2.08 on.
const MIN_PROTOCOL_WITH_PAYLOAD: u16 = 0x0208;
const SECTOR_BYTES: usize = 512;
/// A `setup_sects` of 0 means 4 for historical reasons.
const DEFAULT_SETUP_SECTS: usize = 4;

/// Magic number that opens an LZ4 legacy stream (and may re-open one mid-way).
const LZ4_LEGACY_MAGIC: u32 = 0x184C_2102;
/// Every LZ4 legacy block decompresses to at most 8 MiB.
const LZ4_LEGACY_BLOCK_MAX_BYTES: usize = 8 << 20;

/// Xen note carrying the 32-bit PVH entry point; QEMU needs it to boot an ELF kernel.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

#[derive(Debug, thiserror::Error)]
pub enum BzImageError {
    #[error("the kernel image is only {0} bytes, too short to hold an x86 boot header")]
    TooShort(usize),
    #[error("the kernel image has no x86 boot header (\"HdrS\" magic missing); is it a bzImage?")]
    NotBzImage,
    #[error(
        "the kernel image uses boot protocol {0:#06x}, older than 2.08, which does not say where its payload is"
    )]
    ProtocolTooOld(u16),
    #[error(
        "the kernel image's payload ({offset}+{length} bytes) lies outside the {size}-byte file"
    )]
    PayloadOutOfBounds {
        offset: usize,
        length: usize,
        size: usize,
    },
    #[error(
        "the kernel payload is not LZ4 legacy (starts with {0:02x?}); only CONFIG_KERNEL_LZ4 kernels are supported"
    )]
    NotLz4Legacy(Vec<u8>),
    #[error(
        "the LZ4 payload is truncated: a block at byte {at} claims {claimed} bytes but {left} remain"
    )]
    TruncatedBlock {
        at: usize,
        claimed: usize,
        left: usize,
    },
    #[error("LZ4 block at byte {at} of the payload is corrupt: {source}")]
    CorruptBlock {
        at: usize,
        source: lz4_flex::block::DecompressError,
    },
    #[error(
        "the decompressed kernel is {actual} bytes but the image's trailer says {expected}; the package may be damaged"
    )]
    SizeMismatch { expected: u32, actual: usize },
    #[error("the decompressed kernel is not a 64-bit x86 ELF file: {0}")]
    NotElf(#[source] object::read::Error),
    #[error("the decompressed kernel is not a 64-bit x86 ELF file: machine type {0} is not x86-64")]
    NotX86_64(u16),
    #[error(
        "the decompressed kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); QEMU cannot boot it directly (CONFIG_PVH=y is required)"
    )]
    NoPvhEntry,
}

/// Decompresses `bzimage` into the ELF `vmlinux` and checks that QEMU can boot it.
pub fn extract_vmlinux(bzimage: &[u8]) -> Result<Vec<u8>, BzImageError> {
    let payload = locate_payload(bzimage)?;
    let vmlinux = decompress_lz4_legacy(payload)?;
    check_bootable_elf(&vmlinux)?;
    Ok(vmlinux)
}

fn locate_payload(image: &[u8]) -> Result<&[u8], BzImageError> {
    if image.len() < PAYLOAD_LENGTH_OFFSET + 4 {
        return Err(BzImageError::TooShort(image.len()));
    }
    if &image[HEADER_MAGIC_OFFSET..HEADER_MAGIC_OFFSET + 4] != HEADER_MAGIC {
        return Err(BzImageError::NotBzImage);
    }
    let protocol = u16::from_le_bytes([
        image[PROTOCOL_VERSION_OFFSET],
        image[PROTOCOL_VERSION_OFFSET + 1],
    ]);
    if protocol < MIN_PROTOCOL_WITH_PAYLOAD {
        return Err(BzImageError::ProtocolTooOld(protocol));
    }
    let setup_sects = match image[SETUP_SECTS_OFFSET] {
        0 => DEFAULT_SETUP_SECTS,
        n => usize::from(n),
    };
    // The payload offset is relative to the protected-mode code, which follows
    // the boot sector and the setup sectors.
    let protected_mode_start = (setup_sects + 1) * SECTOR_BYTES;
    let offset = protected_mode_start + read_u32(image, PAYLOAD_OFFSET_OFFSET) as usize;
    let length = read_u32(image, PAYLOAD_LENGTH_OFFSET) as usize;
    image
        .get(offset..offset.saturating_add(length))
        .ok_or(BzImageError::PayloadOutOfBounds {
            offset,
            length,
            size: image.len(),
        })
}

/// Decodes an LZ4 legacy stream whose last 4 bytes are the expected output size.
fn decompress_lz4_legacy(payload: &[u8]) -> Result<Vec<u8>, BzImageError> {
    if payload.len() < 8 || read_u32(payload, 0) != LZ4_LEGACY_MAGIC {
        return Err(BzImageError::NotLz4Legacy(
            payload.iter().take(4).copied().collect(),
        ));
    }
    let (body, trailer) = payload.split_at(payload.len() - 4);
    let expected = read_u32(trailer, 0);
    let mut out = Vec::with_capacity(expected as usize);
    let mut at = 4;
    while at < body.len() {
        let left = body.len() - at;
        if left < 4 {
            return Err(BzImageError::TruncatedBlock {
                at,
                claimed: 4,
                left,
            });
        }
        let claimed = read_u32(body, at);
        at += 4;
        // Concatenated legacy streams repeat the magic where a block size would be.
        if claimed == LZ4_LEGACY_MAGIC {
            continue;
        }
        let claimed = claimed as usize;
        let block = body
            .get(at..at + claimed)
            .ok_or(BzImageError::TruncatedBlock {
                at,
                claimed,
                left: body.len() - at,
            })?;
        let start = out.len();
        out.resize(start + LZ4_LEGACY_BLOCK_MAX_BYTES, 0);
        let written = lz4_flex::block::decompress_into(block, &mut out[start..])
            .map_err(|source| BzImageError::CorruptBlock { at, source })?;
        out.truncate(start + written);
        at += claimed;
    }
    if out.len() != expected as usize {
        return Err(BzImageError::SizeMismatch {
            expected,
            actual: out.len(),
        });
    }
    Ok(out)
}

fn check_bootable_elf(data: &[u8]) -> Result<(), BzImageError> {
    let header =
        elf::FileHeader64::<object::Endianness>::parse(data).map_err(BzImageError::NotElf)?;
    let endian = header.endian().map_err(BzImageError::NotElf)?;
    if header.e_machine(endian) != elf::EM_X86_64 {
        return Err(BzImageError::NotX86_64(header.e_machine(endian)));
    }
    let segments = header
        .program_headers(endian, data)
        .map_err(BzImageError::NotElf)?;
    for segment in segments {
        let Some(mut notes) = segment.notes(endian, data).map_err(BzImageError::NotElf)? else {
            continue;
        };
        while let Some(note) = notes.next().map_err(BzImageError::NotElf)? {
            if note.name() == b"Xen" && note.n_type(endian) == XEN_ELFNOTE_PHYS32_ENTRY {
                return Ok(());
            }
        }
    }
    Err(BzImageError::NoPvhEntry)
}

fn read_u32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bzImage-shaped buffer around `payload` with `setup_sects` = 1.
    fn fake_bzimage(payload: &[u8]) -> Vec<u8> {
        let mut image = vec![0u8; 2 * SECTOR_BYTES];
        image[SETUP_SECTS_OFFSET] = 1;
        image[HEADER_MAGIC_OFFSET..HEADER_MAGIC_OFFSET + 4].copy_from_slice(HEADER_MAGIC);
        image[PROTOCOL_VERSION_OFFSET..PROTOCOL_VERSION_OFFSET + 2]
            .copy_from_slice(&0x020fu16.to_le_bytes());
        image[PAYLOAD_OFFSET_OFFSET..PAYLOAD_OFFSET_OFFSET + 4]
            .copy_from_slice(&16u32.to_le_bytes());
        image[PAYLOAD_LENGTH_OFFSET..PAYLOAD_LENGTH_OFFSET + 4]
            .copy_from_slice(&(payload.len() as u32).to_le_bytes());
        image.extend_from_slice(&[0xAA; 16]);
        image.extend_from_slice(payload);
        image
    }

    fn legacy_stream(chunks: &[&[u8]]) -> Vec<u8> {
        let mut stream = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
        let mut total = 0u32;
        for chunk in chunks {
            let block = lz4_flex::block::compress(chunk);
            stream.extend_from_slice(&(block.len() as u32).to_le_bytes());
            stream.extend_from_slice(&block);
            total += chunk.len() as u32;
        }
        stream.extend_from_slice(&total.to_le_bytes());
        stream
    }

    #[test]
    fn payload_is_found_after_setup_sectors_and_decoded_across_blocks() {
        let first: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let second = b"second block".repeat(40);
        let image = fake_bzimage(&legacy_stream(&[&first, &second]));
        let payload = locate_payload(&image).unwrap();
        let decoded = decompress_lz4_legacy(payload).unwrap();
        assert_eq!(decoded, [first, second].concat());
    }

    #[test]
    fn wrong_trailer_size_is_reported() {
        let mut stream = legacy_stream(&[b"abcdefgh"]);
        let n = stream.len();
        stream[n - 4..].copy_from_slice(&9u32.to_le_bytes());
        assert!(matches!(
            decompress_lz4_legacy(&stream),
            Err(BzImageError::SizeMismatch {
                expected: 9,
                actual: 8
            })
        ));
    }

    #[test]
    fn truncated_block_is_reported() {
        let mut stream = legacy_stream(&[&[7u8; 300]]);
        // Claim more bytes than the stream holds.
        stream[4..8].copy_from_slice(&10_000u32.to_le_bytes());
        assert!(matches!(
            decompress_lz4_legacy(&stream),
            Err(BzImageError::TruncatedBlock { .. })
        ));
    }

    #[test]
    fn gzip_payload_is_rejected_with_a_reason() {
        let image = fake_bzimage(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0]);
        let payload = locate_payload(&image).unwrap();
        assert!(matches!(
            decompress_lz4_legacy(payload),
            Err(BzImageError::NotLz4Legacy(_))
        ));
    }

    #[test]
    fn non_bzimage_is_rejected() {
        assert!(matches!(
            locate_payload(&[0u8; 1024]),
            Err(BzImageError::NotBzImage)
        ));
        assert!(matches!(
            locate_payload(&[0u8; 10]),
            Err(BzImageError::TooShort(10))
        ));
    }

    #[test]
    fn decoded_data_that_is_not_elf_is_rejected() {
        assert!(matches!(
            check_bootable_elf(
                b"definitely not an ELF file, just text padding it out to 64 bytes.."
            ),
            Err(BzImageError::NotElf(_))
        ));
    }

    /// The parser's error stays the cause (for callers) and still ends the
    /// message (the runtime and the image builder print Display only).
    #[test]
    fn the_elf_parser_error_is_kept_as_the_source() {
        let err = check_bootable_elf(&[0u8; 64]).unwrap_err();
        let source = std::error::Error::source(&err).expect("the parser's error");
        assert_eq!(
            err.to_string(),
            format!("the decompressed kernel is not a 64-bit x86 ELF file: {source}")
        );
    }

    #[test]
    fn a_kernel_for_another_machine_is_rejected_by_number() {
        // The ELF parser reads the header in place, so it must be aligned.
        #[repr(C, align(8))]
        struct Aligned([u8; 64]);
        let mut aligned = Aligned([0; 64]);
        let header = &mut aligned.0;
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = 2; // ELFCLASS64
        header[5] = 1; // little-endian
        header[6] = 1; // EV_CURRENT
        header[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
        let err = check_bootable_elf(header).unwrap_err();
        assert!(matches!(err, BzImageError::NotX86_64(183)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the decompressed kernel is not a 64-bit x86 ELF file: machine type 183 is not x86-64"
        );
    }
}
