//! CPU features the runtime uses when present. Go's amd64 baseline (v1) guarantees only
//! SSE2, so anything newer is detected at run time and has a baseline fallback.

use core::sync::atomic::{AtomicU8, Ordering};

const UNKNOWN: u8 = 0;
const ABSENT: u8 = 1;
const PRESENT: u8 = 2;

static AVX2: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether the CPU has AVX2 and the kernel saves the AVX registers (checked once).
#[inline]
pub fn has_avx2() -> bool {
    match AVX2.load(Ordering::Relaxed) {
        UNKNOWN => {
            let present = detect_avx2();
            AVX2.store(if present { PRESENT } else { ABSENT }, Ordering::Relaxed);
            present
        }
        v => v == PRESENT,
    }
}

#[cfg(target_arch = "x86_64")]
fn detect_avx2() -> bool {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    let basic = __cpuid(0);
    if basic.eax < 7 {
        return false;
    }
    let leaf1 = __cpuid(1);
    let (osxsave, avx) = (leaf1.ecx & 1 << 27 != 0, leaf1.ecx & 1 << 28 != 0);
    if !(osxsave && avx) {
        return false;
    }
    // SAFETY: OSXSAVE is set, so XGETBV is available and XCR0 readable.
    let xcr0 = unsafe { xgetbv0() };
    let leaf7 = __cpuid_count(7, 0); // present: checked above
    xcr0 & 0b110 == 0b110 && leaf7.ebx & 1 << 5 != 0
}

/// XCR0: which register states the kernel saves (bits 1 and 2: SSE and AVX).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "xsave")]
unsafe fn xgetbv0() -> u64 {
    // SAFETY: the caller checked OSXSAVE, which makes XGETBV available.
    unsafe { core::arch::x86_64::_xgetbv(0) }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_avx2() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn avx2_detection_agrees_with_std() {
        assert_eq!(super::has_avx2(), std::is_x86_feature_detected!("avx2"));
    }
}
