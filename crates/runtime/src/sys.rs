//! The only module that talks to the operating system: raw Linux x86-64 system calls.
//!
//! The runtime is called on Go's g0 and gsignal stacks of arbitrary threads, so it cannot
//! use thread-local `errno` or anything that needs initialisation; raw `syscall`
//! instructions need neither. Results follow the kernel convention: a negative value in
//! `-4095..0` is `-errno`.

use core::arch::asm;

const SYS_WRITE: usize = 1;
const SYS_CLOSE: usize = 3;
const SYS_MMAP: usize = 9;
const SYS_MUNMAP: usize = 11;
const SYS_SCHED_YIELD: usize = 24;
const SYS_MINCORE: usize = 27;
const SYS_MADVISE: usize = 28;
const SYS_NANOSLEEP: usize = 35;
const SYS_GETPID: usize = 39;
const SYS_EXIT_GROUP: usize = 231;
const SYS_OPENAT: usize = 257;
const SYS_FACCESSAT: usize = 269;

const AT_FDCWD: isize = -100;

pub const PROT_NONE: usize = 0;
pub const PROT_READ: usize = 1;
pub const PROT_WRITE: usize = 2;
pub const MAP_PRIVATE: usize = 0x02;
pub const MAP_FIXED_NOREPLACE: usize = 0x10_0000;
pub const MAP_ANONYMOUS: usize = 0x20;
pub const MAP_NORESERVE: usize = 0x4000;
pub const MADV_DONTNEED: usize = 4;
pub const O_WRONLY: usize = 0o1;
pub const O_CREAT: usize = 0o100;
pub const O_TRUNC: usize = 0o1000;
pub const O_APPEND: usize = 0o2000;
pub const O_CLOEXEC: usize = 0o2000000;

#[inline]
unsafe fn syscall6(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the caller guarantees the arguments are valid for syscall `n`; the
    // `syscall` instruction clobbers only rcx and r11, which are declared.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Anonymous private mapping; `None` on failure.
pub fn mmap_anon(hint: usize, len: usize, prot: usize, extra_flags: usize) -> Option<*mut u8> {
    // SAFETY: an anonymous mapping with no fixed-replace semantics cannot clobber existing
    // memory; the kernel validates every argument.
    let r = unsafe {
        syscall6(
            SYS_MMAP,
            [
                hint,
                len,
                prot,
                MAP_PRIVATE | MAP_ANONYMOUS | extra_flags,
                usize::MAX,
                0,
            ],
        )
    };
    if (-4095..0).contains(&r) {
        None
    } else {
        Some(r as *mut u8)
    }
}

/// Unmaps `[addr, addr+len)`.
///
/// # Safety
/// Nothing may reference the range afterwards.
pub unsafe fn munmap(addr: *mut u8, len: usize) {
    // SAFETY: forwarded to the caller's contract.
    unsafe { syscall6(SYS_MUNMAP, [addr as usize, len, 0, 0, 0, 0]) };
}

/// Gives the pages of `[addr, addr+len)` back to the kernel; they read as zero afterwards.
///
/// # Safety
/// The range must be an anonymous private mapping owned by the runtime.
pub unsafe fn madvise_dontneed(addr: *mut u8, len: usize) {
    // SAFETY: forwarded to the caller's contract.
    unsafe { syscall6(SYS_MADVISE, [addr as usize, len, MADV_DONTNEED, 0, 0, 0]) };
}

/// Which pages of `[addr, addr + len)` (page-aligned, mapped) are resident: bit 0 of
/// `vec[i]` for page `i`. False on error (then `vec` is unspecified).
pub fn mincore(addr: usize, len: usize, vec: &mut [u8]) -> bool {
    if vec.len() < len.div_ceil(4096) {
        return false;
    }
    // SAFETY: the kernel writes at most one byte per page of the range into `vec`, which
    // holds that many; it only reads the page tables of `[addr, addr+len)`.
    unsafe { syscall6(SYS_MINCORE, [addr, len, vec.as_mut_ptr() as usize, 0, 0, 0]) == 0 }
}

/// Writes all of `buf` to `fd`, retrying on short writes and EINTR. Returns false on error.
pub fn write_all(fd: i32, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: `buf` is a valid readable slice for its length.
        let r = unsafe {
            syscall6(
                SYS_WRITE,
                [fd as usize, buf.as_ptr() as usize, buf.len(), 0, 0, 0],
            )
        };
        if r == -4 {
            continue; // EINTR: Go's SIGURG preemption signal can interrupt us.
        }
        if r <= 0 {
            return false;
        }
        buf = &buf[r as usize..];
    }
    true
}

/// Opens `path` (NUL-terminated) for writing; returns the fd or `-errno`.
pub fn open_for_write(path: &[u8], flags: usize) -> isize {
    debug_assert!(path.last() == Some(&0));
    loop {
        // SAFETY: `path` is NUL-terminated and outlives the call.
        let r = unsafe {
            syscall6(
                SYS_OPENAT,
                [
                    AT_FDCWD as usize,
                    path.as_ptr() as usize,
                    O_WRONLY | O_CLOEXEC | flags,
                    0o644,
                    0,
                    0,
                ],
            )
        };
        if r != -4 {
            return r;
        }
    }
}

/// Whether this process may write into the directory `path` (NUL-terminated); the
/// error is `-errno`.
pub fn dir_writable(path: &[u8]) -> Result<(), isize> {
    debug_assert!(path.last() == Some(&0));
    const W_OK: usize = 2;
    const X_OK: usize = 1;
    // SAFETY: `path` is NUL-terminated and outlives the call.
    let r = unsafe {
        syscall6(
            SYS_FACCESSAT,
            [
                AT_FDCWD as usize,
                path.as_ptr() as usize,
                W_OK | X_OK,
                0,
                0,
                0,
            ],
        )
    };
    if r == 0 { Ok(()) } else { Err(r) }
}

pub fn close(fd: i32) {
    // SAFETY: closing a descriptor has no memory-safety preconditions.
    unsafe { syscall6(SYS_CLOSE, [fd as usize, 0, 0, 0, 0, 0]) };
}

pub fn getpid() -> u32 {
    // SAFETY: getpid has no arguments and cannot fail.
    unsafe { syscall6(SYS_GETPID, [0; 6]) as u32 }
}

pub fn sched_yield() {
    // SAFETY: no arguments, no preconditions.
    unsafe { syscall6(SYS_SCHED_YIELD, [0; 6]) };
}

/// Sleeps for `ms` milliseconds (restarting after signals).
pub fn sleep_ms(ms: u64) {
    let mut req = [(ms / 1000) as i64, ((ms % 1000) * 1_000_000) as i64];
    loop {
        let mut rem = [0i64; 2];
        // SAFETY: both timespec buffers are valid for the call.
        let r = unsafe {
            syscall6(
                SYS_NANOSLEEP,
                [req.as_ptr() as usize, rem.as_mut_ptr() as usize, 0, 0, 0, 0],
            )
        };
        if r != -4 {
            return;
        }
        req = rem;
    }
}

/// Terminates the whole process with `code`.
pub fn exit(code: i32) -> ! {
    loop {
        // SAFETY: exit_group never returns.
        unsafe { syscall6(SYS_EXIT_GROUP, [code as usize, 0, 0, 0, 0, 0]) };
    }
}

unsafe extern "C" {
    // libc's environment: the runtime is initialised from Go's `schedinit`, after libc
    // set up `environ`; reached through the PLT, which Go's internal linker accepts.
    #[link_name = "getenv"]
    fn libc_getenv(name: *const u8) -> *const u8;
}

/// The value of environment variable `name` (NUL-terminated), if set.
pub fn getenv(name: &[u8]) -> Option<&'static [u8]> {
    debug_assert!(name.last() == Some(&0));
    // SAFETY: `name` is NUL-terminated; getenv returns NULL or a NUL-terminated string that
    // lives as long as the environment, which nothing in a Go process frees.
    unsafe {
        let p = libc_getenv(name.as_ptr());
        if p.is_null() {
            return None;
        }
        Some(cstr_bytes(p))
    }
}

/// The bytes of a NUL-terminated string (without the NUL).
///
/// # Safety
/// `p` must point to a NUL-terminated string that lives for `'a`.
pub unsafe fn cstr_bytes<'a>(p: *const u8) -> &'a [u8] {
    let mut n = 0;
    // SAFETY: the caller guarantees a terminating NUL within the allocation.
    unsafe {
        while *p.add(n) != 0 {
            n += 1;
        }
        core::slice::from_raw_parts(p, n)
    }
}
