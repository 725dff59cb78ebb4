//! The race runtime objects embedded at build time (see `build.rs`).

use sha2::{Digest, Sha256};

/// Which runtime to link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// gorace's detector.
    Gorace,
    /// Every entry point only performs the atomics: the cost of Go's instrumentation
    /// alone, for benchmarks. Detects nothing.
    Floor,
}

pub fn bytes(variant: Variant) -> &'static [u8] {
    match variant {
        Variant::Gorace => include_bytes!(concat!(env!("OUT_DIR"), "/race_linux.syso")),
        Variant::Floor => include_bytes!(concat!(env!("OUT_DIR"), "/race_linux_floor.syso")),
    }
}

/// The `__tsan_*` symbols the object exports, sorted.
pub fn exports() -> Vec<&'static str> {
    include_str!(concat!(env!("OUT_DIR"), "/exports.txt"))
        .lines()
        .collect()
}

/// First 12 hex digits of the object's SHA-256: names its private GOROOT and cache.
pub fn short_hash(variant: Variant) -> String {
    let digest = Sha256::digest(bytes(variant));
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_objects_are_elf_relocatables_with_all_entry_points() {
        for v in [Variant::Gorace, Variant::Floor] {
            let b = bytes(v);
            assert_eq!(&b[..4], b"\x7fELF");
            assert_eq!(u16::from_le_bytes([b[16], b[17]]), 1, "ET_REL");
        }
        let e = exports();
        assert_eq!(e.len(), 39);
        assert!(e.contains(&"__tsan_go_atomic64_compare_exchange") && e.contains(&"__tsan_read"));
        assert_ne!(short_hash(Variant::Gorace), short_hash(Variant::Floor));
    }
}
