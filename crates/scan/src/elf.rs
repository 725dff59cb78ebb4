//! ELF container: architecture, the pclntab bytes, code bytes by address, Go version,
//! and `runtime.firstmoduledata` (text base and funcdata base, found even in stripped PIE
//! and externally linked binaries through relative dynamic relocations).

use crate::pclntab::Pclntab;
use object::{
    Architecture, Object, ObjectKind, ObjectSection, ObjectSymbol, RelocationFlags, SectionKind,
    elf,
};

pub struct Binary<'a> {
    pub arch: &'static str,
    pub pclntab: &'a [u8],
    /// Virtual address of the pclntab header.
    pub pclntab_addr: u64,
    /// Base of function entry offsets when the pclntab header leaves it zero (PIE,
    /// external linking): `moduledata.text`, else `runtime.text`, else `.text`.
    pub text_fallback: u64,
    /// Where `text_fallback` came from.
    pub text_fallback_source: &'static str,
    /// `moduledata.gofunc`, the base of funcdata offsets (inline trees), when found.
    pub gofunc: Option<u64>,
    pub go_version: Option<String>,
    code: Vec<(u64, &'a [u8])>,
    /// Allocated sections with file contents, by address.
    mem: Vec<(u64, &'a [u8])>,
    /// `R_*_RELATIVE` dynamic relocations (PIE): address -> value, sorted.
    relative: Vec<(u64, u64)>,
}

const MAGIC: [u8; 4] = 0xffff_fff1u32.to_le_bytes();

impl<'a> Binary<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Binary<'a>, String> {
        if data.len() < 4 || &data[..4] != b"\x7fELF" {
            return Err("not an ELF file".into());
        }
        let file = object::File::parse(data).map_err(|e| format!("malformed ELF: {e}"))?;
        let (arch, relative_type) = match file.architecture() {
            Architecture::Aarch64 => ("arm64", elf::R_AARCH64_RELATIVE),
            Architecture::X86_64 => ("amd64", elf::R_X86_64_RELATIVE),
            other => {
                return Err(format!(
                    "architecture {other:?} is not supported yet (supported: {})",
                    crate::SUPPORTED_ARCHES.join(", ")
                ));
            }
        };
        let section = |name: &str| {
            file.section_by_name(name)
                .and_then(|s| Some((s.address(), s.data().ok()?)))
                .filter(|(_, d)| !d.is_empty())
        };
        let (pclntab_addr, pclntab) = match section(".gopclntab")
            .or_else(|| section(".data.rel.ro.gopclntab"))
        {
            Some(d) => d,
            None => find_pclntab(&file)
                .ok_or("no Go pclntab found (not a Go binary, or a Go release before go1.20)")?,
        };
        let code = file
            .sections()
            .filter(|s| s.kind() == SectionKind::Text)
            .filter_map(|s| Some((s.address(), s.data().ok()?)))
            .collect();
        let mem = file
            .sections()
            .filter(|s| s.address() != 0 && s.kind() != SectionKind::UninitializedData)
            .filter_map(|s| Some((s.address(), s.data().ok()?)))
            .filter(|(_, d)| !d.is_empty())
            .collect();
        let mut relative = Vec::new();
        if file.kind() == ObjectKind::Dynamic {
            for (addr, r) in file.dynamic_relocations().into_iter().flatten() {
                if r.flags()
                    == (RelocationFlags::Elf {
                        r_type: relative_type,
                    })
                {
                    relative.push((addr, r.addend() as u64));
                }
            }
            relative.sort_unstable();
        }
        let go_version = section(".go.buildinfo").and_then(|(_, d)| buildinfo_version(d));
        let mut bin = Binary {
            arch,
            pclntab,
            pclntab_addr,
            text_fallback: 0,
            text_fallback_source: "none",
            gofunc: None,
            go_version,
            code,
            mem,
            relative,
        };
        let moduledata = file
            .symbols()
            .find(|s| s.name() == Ok("runtime.firstmoduledata"))
            .map(|s| s.address());
        if let Some((text, gofunc)) = bin.find_moduledata(moduledata) {
            bin.text_fallback = text;
            bin.text_fallback_source = "moduledata";
            bin.gofunc = gofunc;
        } else if let Some(s) = file.symbols().find(|s| s.name() == Ok("runtime.text")) {
            bin.text_fallback = s.address();
            bin.text_fallback_source = "runtime.text symbol";
        } else if let Some(s) = file.section_by_name(".text") {
            bin.text_fallback = s.address();
            bin.text_fallback_source = ".text section";
        }
        Ok(bin)
    }

    /// The bytes of `[start, end)` if one code section holds them all.
    pub fn code(&self, start: u64, end: u64) -> Option<&'a [u8]> {
        Self::range(&self.code, start, end)
    }

    fn range(secs: &[(u64, &'a [u8])], start: u64, end: u64) -> Option<&'a [u8]> {
        secs.iter().find_map(|&(addr, d)| {
            let lo = usize::try_from(start.checked_sub(addr)?).ok()?;
            let hi = usize::try_from(end.checked_sub(addr)?).ok()?;
            d.get(lo..hi)
        })
    }

    /// `len` bytes of the loaded image at `addr` (file contents of allocated sections).
    pub fn bytes_at(&self, addr: u64, len: u64) -> Option<&'a [u8]> {
        Self::range(&self.mem, addr, addr.checked_add(len)?)
    }

    /// The pointer-sized word at `addr` as the loaded program sees it: the value of a
    /// relative dynamic relocation there (PIE), else the file contents.
    pub fn word_at(&self, addr: u64, ptr_size: u8, big_endian: bool) -> Option<u64> {
        if let Ok(i) = self.relative.binary_search_by_key(&addr, |&(a, _)| a) {
            return Some(self.relative[i].1);
        }
        let b = self.bytes_at(addr, ptr_size as u64)?;
        let mut v = [0u8; 8];
        Some(match (ptr_size, big_endian) {
            (4, false) => u32::from_le_bytes(b.try_into().ok()?) as u64,
            (4, true) => u32::from_be_bytes(b.try_into().ok()?) as u64,
            (_, false) => {
                v.copy_from_slice(b);
                u64::from_le_bytes(v)
            }
            (_, true) => {
                v.copy_from_slice(b);
                u64::from_be_bytes(v)
            }
        })
    }

    /// Finds `runtime.firstmoduledata` (at `hint` when the symbol exists, else by
    /// searching data for a pointer to the pclntab header, relocated or not) and returns
    /// its `text` and `gofunc` fields. A candidate must agree with the pclntab header on
    /// the funcnametab, pctab and ftab pointers and on the ftab length.
    fn find_moduledata(&self, hint: Option<u64>) -> Option<(u64, Option<u64>)> {
        let tab = Pclntab::parse(self.pclntab, 0).ok()?;
        let (ps, be) = (tab.ptr_size, tab.big_endian);
        let target = self.pclntab_addr;
        let (funcname, pctab, functab) = tab.offsets();
        let validate = |m: u64| -> Option<(u64, Option<u64>)> {
            let w = |i: u64| self.word_at(m.checked_add(i * ps as u64)?, ps, be);
            let at = |off: usize| target.checked_add(off as u64);
            let ok = w(0) == Some(target)
                && w(1) == at(funcname)
                && w(10) == at(pctab)
                && w(16) == at(functab)
                && w(17) == Some(tab.nfunc as u64 + 1);
            let (min_pc, text) = (w(20)?, w(22)?);
            if !ok || text > min_pc {
                return None;
            }
            // go1.27 inserted typedesclen after types and itaboffset/itabsize after
            // etypes, moving gofunc from word 40 to 43. Pick by the build's Go version;
            // without one, by whether word 38 is a length (go1.27) or an address.
            let go127 = match self.go_version.as_deref().and_then(minor_version) {
                Some(minor) => minor >= 27,
                None => w(38).zip(w(37)).is_some_and(|(a, b)| a < b),
            };
            let gofunc = w(if go127 { 43 } else { 40 }).filter(|&g| g != 0);
            Some((text, gofunc))
        };
        if let Some(r) = hint.and_then(validate) {
            return Some(r);
        }
        // PIE: the pointer is a relative relocation's value.
        let relocated = self.relative.iter().filter(|&&(_, v)| v == target);
        if let Some(r) = relocated.filter_map(|&(a, _)| validate(a)).next() {
            return Some(r);
        }
        // Otherwise the pointer is in the file: search aligned words of data sections.
        for &(addr, d) in &self.mem {
            if self.code.iter().any(|&(a, _)| a == addr) {
                continue;
            }
            let step = ps as usize;
            let skew = (step - (addr % step as u64) as usize) % step;
            let Some(d) = d.get(skew..) else { continue };
            for (k, w) in d.chunks_exact(step).enumerate() {
                let v = match (step, be) {
                    (4, false) => u32::from_le_bytes(w.try_into().unwrap()) as u64,
                    (4, true) => u32::from_be_bytes(w.try_into().unwrap()) as u64,
                    (_, false) => u64::from_le_bytes(w.try_into().unwrap()),
                    (_, true) => u64::from_be_bytes(w.try_into().unwrap()),
                };
                if v == target
                    && let Some(r) = validate(addr.wrapping_add((skew + k * step) as u64))
                {
                    return Some(r);
                }
            }
        }
        None
    }
}

/// 27 for "go1.27.3", "go1.27rc1", "go1.27-devel ...".
fn minor_version(v: &str) -> Option<u32> {
    let rest = v.strip_prefix("go1.")?;
    let n: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    n.parse().ok()
}

/// Stripped binaries without section names: search read-only data for the magic and
/// accept the first candidate whose header and first function parse.
fn find_pclntab<'a>(file: &object::File<'a>) -> Option<(u64, &'a [u8])> {
    for s in file.sections() {
        if !matches!(
            s.kind(),
            SectionKind::ReadOnlyData | SectionKind::ReadOnlyDataWithRel | SectionKind::Data
        ) {
            continue;
        }
        let Ok(d) = s.data() else { continue };
        let mut off = 0;
        while let Some(pos) = d[off..].windows(4).position(|w| w == MAGIC) {
            let cand = &d[off + pos..];
            let valid = crate::pclntab::Pclntab::parse(cand, 0)
                .is_ok_and(|t| t.nfunc > 0 && t.func(0).is_ok());
            if valid {
                return Some((s.address().wrapping_add((off + pos) as u64), cand));
            }
            off += pos + 4;
        }
    }
    None
}

/// The Go version string from `.go.buildinfo` (go1.18+ inline-string format).
pub fn buildinfo_version(d: &[u8]) -> Option<String> {
    if d.len() < 32 || &d[..14] != b"\xff Go buildinf:" || d[15] & 2 == 0 {
        return None;
    }
    let rest = &d[32..];
    let (mut len, mut shift, mut i) = (0usize, 0, 0);
    loop {
        let b = *rest.get(i)?;
        len |= ((b & 0x7f) as usize) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
    let s = rest.get(i..i.checked_add(len)?)?;
    std::str::from_utf8(s).ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildinfo_version_is_read_and_garbage_rejected() {
        let mut d = b"\xff Go buildinf:\x08\x02".to_vec();
        d.resize(32, 0);
        d.push(8);
        d.extend_from_slice(b"go1.27.3");
        assert_eq!(buildinfo_version(&d).as_deref(), Some("go1.27.3"));
        d[32] = 200;
        assert_eq!(buildinfo_version(&d), None);
        assert_eq!(buildinfo_version(b"junk"), None);
    }

    #[test]
    fn go_minor_versions() {
        assert_eq!(minor_version("go1.27.3"), Some(27));
        assert_eq!(minor_version("go1.9"), Some(9));
        assert_eq!(minor_version("go1.28rc1"), Some(28));
        assert_eq!(minor_version("devel +abc"), None);
        assert_eq!(minor_version("go1."), None);
    }

    #[test]
    fn non_elf_input_is_a_clear_error() {
        assert_eq!(Binary::parse(b"hello").err().unwrap(), "not an ELF file");
        assert!(
            Binary::parse(b"\x7fELF\x02\x01\x01")
                .err()
                .unwrap()
                .starts_with("malformed ELF")
        );
    }
}
