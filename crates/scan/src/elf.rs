//! ELF container: architecture, the pclntab bytes, code bytes by address, Go version.

use object::{Architecture, Object, ObjectSection, ObjectSymbol, SectionKind};

pub struct Binary<'a> {
    pub arch: &'static str,
    pub pclntab: &'a [u8],
    /// Base of function entry offsets when the pclntab header leaves it zero.
    pub text_fallback: u64,
    pub go_version: Option<String>,
    code: Vec<(u64, &'a [u8])>,
}

const MAGIC: [u8; 4] = 0xffff_fff1u32.to_le_bytes();

impl<'a> Binary<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Binary<'a>, String> {
        if data.len() < 4 || &data[..4] != b"\x7fELF" {
            return Err("not an ELF file".into());
        }
        let file = object::File::parse(data).map_err(|e| format!("malformed ELF: {e}"))?;
        let arch = match file.architecture() {
            Architecture::Aarch64 => "arm64",
            Architecture::X86_64 => "amd64",
            other => {
                return Err(format!(
                    "architecture {other:?} is not supported yet (supported: {})",
                    crate::SUPPORTED_ARCHES.join(", ")
                ));
            }
        };
        let section_data = |name: &str| {
            file.section_by_name(name)
                .and_then(|s| s.data().ok())
                .filter(|d| !d.is_empty())
        };
        let pclntab = match section_data(".gopclntab")
            .or_else(|| section_data(".data.rel.ro.gopclntab"))
        {
            Some(d) => d,
            None => find_pclntab(&file)
                .ok_or("no Go pclntab found (not a Go binary, or a Go release before go1.20)")?,
        };
        let text_fallback = file
            .symbols()
            .find(|s| s.name() == Ok("runtime.text"))
            .map(|s| s.address())
            .or_else(|| file.section_by_name(".text").map(|s| s.address()))
            .unwrap_or(0);
        let code = file
            .sections()
            .filter(|s| s.kind() == SectionKind::Text)
            .filter_map(|s| Some((s.address(), s.data().ok()?)))
            .collect();
        let go_version = section_data(".go.buildinfo").and_then(buildinfo_version);
        Ok(Binary {
            arch,
            pclntab,
            text_fallback,
            go_version,
            code,
        })
    }

    /// The bytes of `[start, end)` if one code section holds them all.
    pub fn code(&self, start: u64, end: u64) -> Option<&'a [u8]> {
        self.code.iter().find_map(|&(addr, d)| {
            let lo = start.checked_sub(addr)? as usize;
            let hi = end.checked_sub(addr)? as usize;
            d.get(lo..hi)
        })
    }
}

/// Stripped binaries without section names: search read-only data for the magic and
/// accept the first candidate whose header and first function parse.
fn find_pclntab<'a>(file: &object::File<'a>) -> Option<&'a [u8]> {
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
                return Some(cand);
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
