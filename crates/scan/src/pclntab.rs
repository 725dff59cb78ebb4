//! Go's pclntab (go1.20+ layout, magic `0xfffffff1`): header, function table, `_func`
//! records and pc-value tables (`runtime/symtab.go`, `internal/abi/symtab.go`).
//!
//! Every read is bounds-checked: a truncated or hostile table gives an `Err`, never a
//! panic.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error(msg.into()))
}

pub const MAGIC_GO120: u32 = 0xffff_fff1;

/// `_func.flag` bits.
pub const FLAG_TOPFRAME: u8 = 1;
pub const FLAG_SPWRITE: u8 = 2;
pub const FLAG_ASM: u8 = 4;

pub const PCDATA_UNSAFE_POINT: usize = 0;
pub const PCDATA_INL_TREE_INDEX: usize = 2;
pub const FUNCDATA_LOCALS_POINTER_MAPS: usize = 1;
pub const FUNCDATA_INL_TREE: usize = 3;

/// `PCDATA_UnsafePoint` values.
pub const UNSAFE_POINT_UNSAFE: i32 = -2;
pub const UNSAFE_POINT_RESTART1: i32 = -3;
pub const UNSAFE_POINT_RESTART2: i32 = -4;
pub const UNSAFE_POINT_RESTART_AT_ENTRY: i32 = -5;

#[derive(Debug)]
pub struct Pclntab<'a> {
    data: &'a [u8],
    pub big_endian: bool,
    pub min_lc: u8,
    pub ptr_size: u8,
    pub nfunc: usize,
    pub text_start: u64,
    /// The header's textStart as stored in the file (0 for PIE and some external links).
    pub header_text_start: u64,
    funcname: usize,
    pctab: usize,
    functab: usize,
}

#[derive(Debug, Clone)]
pub struct Func {
    pub entry: u64,
    /// End of the function (the next function's entry).
    pub end: u64,
    pub name: String,
    pub pcsp: u32,
    pub flag: u8,
    pub func_id: u8,
    pub pcdata: Vec<u32>,
    pub funcdata: Vec<u32>,
}

impl Func {
    pub fn has_funcdata(&self, i: usize) -> bool {
        self.funcdata.get(i).is_some_and(|&v| v != u32::MAX)
    }
}

fn slice(d: &[u8], off: usize, len: usize) -> Result<&[u8]> {
    off.checked_add(len)
        .and_then(|end| d.get(off..end))
        .ok_or_else(|| Error(format!("pclntab truncated at offset {off:#x}")))
}

impl<'a> Pclntab<'a> {
    /// Parses the header of the table at the start of `data`. `text_fallback` is used as
    /// the base of entry offsets when the header's textStart is zero.
    pub fn parse(data: &'a [u8], text_fallback: u64) -> Result<Self> {
        let head = slice(data, 0, 8)?;
        let le = u32::from_le_bytes(head[..4].try_into().unwrap());
        let be = u32::from_be_bytes(head[..4].try_into().unwrap());
        let big_endian = match (le, be) {
            (MAGIC_GO120, _) => false,
            (_, MAGIC_GO120) => true,
            (m, _) if [0xffff_fff0, 0xffff_fffa, 0xffff_fffb].contains(&m) => {
                return err("pclntab of a Go release before go1.20 (unsupported: go1.20+ only)");
            }
            _ => return err("no Go pclntab (bad magic)"),
        };
        let (min_lc, ptr_size) = (head[6], head[7]);
        if head[4] != 0
            || head[5] != 0
            || ![1, 2, 4].contains(&min_lc)
            || ![4, 8].contains(&ptr_size)
        {
            return err("invalid pclntab header");
        }
        let mut t = Pclntab {
            data,
            big_endian,
            min_lc,
            ptr_size,
            nfunc: 0,
            text_start: 0,
            header_text_start: 0,
            funcname: 0,
            pctab: 0,
            functab: 0,
        };
        let word = |i: usize| t.word(8 + i * ptr_size as usize);
        let nfunc = word(0)?;
        let text_start = word(2)?;
        let (funcname, pctab, functab) = (word(3)?, word(6)?, word(7)?);
        let size = data.len() as u64;
        if nfunc > size / 8 || funcname > size || pctab > size || functab > size {
            return err("invalid pclntab header (offsets out of range)");
        }
        t.nfunc = nfunc as usize;
        t.header_text_start = text_start;
        t.text_start = if text_start != 0 {
            text_start
        } else {
            text_fallback
        };
        t.funcname = funcname as usize;
        t.pctab = pctab as usize;
        t.functab = functab as usize;
        // The function table must fit: nfunc pairs plus the end entry.
        slice(data, t.functab, (t.nfunc * 2 + 1) * 4)?;
        Ok(t)
    }

    /// Offsets of funcnametab, pctab and the function table, relative to the header.
    pub fn offsets(&self) -> (usize, usize, usize) {
        (self.funcname, self.pctab, self.functab)
    }

    /// A function name by its offset in funcnametab (`_func.nameOff`,
    /// `inlinedCall.nameOff`).
    pub fn name_at(&self, name_off: i32) -> Result<String> {
        let off = usize::try_from(name_off)
            .ok()
            .and_then(|o| self.funcname.checked_add(o))
            .ok_or_else(|| Error("name offset out of range".into()))?;
        self.cstr(off)
    }

    fn u32_at(&self, off: usize) -> Result<u32> {
        let b: [u8; 4] = slice(self.data, off, 4)?.try_into().unwrap();
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn word(&self, off: usize) -> Result<u64> {
        if self.ptr_size == 4 {
            return self.u32_at(off).map(u64::from);
        }
        let b: [u8; 8] = slice(self.data, off, 8)?.try_into().unwrap();
        Ok(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    fn cstr(&self, off: usize) -> Result<String> {
        let rest = self
            .data
            .get(off..)
            .ok_or_else(|| Error("name offset out of range".into()))?;
        let n = rest
            .iter()
            .position(|&c| c == 0)
            .ok_or_else(|| Error("unterminated name".into()))?;
        Ok(String::from_utf8_lossy(&rest[..n]).into_owned())
    }

    /// The index of the function whose range holds `pc`.
    pub fn find(&self, pc: u64) -> Option<usize> {
        let off = pc.checked_sub(self.text_start)?;
        let entry = |i: usize| self.u32_at(self.functab + i * 8).map(u64::from);
        if self.nfunc == 0 || off < entry(0).ok()? || off >= entry(self.nfunc).ok()? {
            return None;
        }
        let (mut lo, mut hi) = (0, self.nfunc); // entry(lo) <= off < entry(hi)
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if entry(mid).ok()? <= off {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(lo)
    }

    /// The `i`-th function.
    pub fn func(&self, i: usize) -> Result<Func> {
        if i >= self.nfunc {
            return err("function index out of range");
        }
        let entry_off = self.u32_at(self.functab + i * 8)?;
        let func_off = self.u32_at(self.functab + i * 8 + 4)? as usize;
        let end_off = self.u32_at(self.functab + (i + 1) * 8)?;
        let f = self
            .functab
            .checked_add(func_off)
            .ok_or_else(|| Error("func offset overflow".into()))?;
        let fields = |k: usize| self.u32_at(f + 4 * k);
        if fields(0)? != entry_off {
            return err(format!(
                "function {i}: _func entry does not match the function table"
            ));
        }
        let name_off = fields(1)? as usize;
        let pcsp = fields(4)?;
        let npcdata = fields(7)? as usize;
        let tail = slice(self.data, f + 40, 4)?;
        let (func_id, flag, nfuncdata) = (tail[0], tail[1], tail[3] as usize);
        if npcdata > 64 {
            return err(format!("function {i}: implausible npcdata {npcdata}"));
        }
        let mut pcdata = Vec::with_capacity(npcdata);
        for k in 0..npcdata {
            pcdata.push(self.u32_at(f + 44 + 4 * k)?);
        }
        let mut funcdata = Vec::with_capacity(nfuncdata);
        for k in 0..nfuncdata {
            funcdata.push(self.u32_at(f + 44 + 4 * npcdata + 4 * k)?);
        }
        let name = self.cstr(
            self.funcname
                .checked_add(name_off)
                .ok_or_else(|| Error("name overflow".into()))?,
        )?;
        let entry = self.text_start.wrapping_add(entry_off as u64);
        let end = self.text_start.wrapping_add(end_off as u64);
        if end_off < entry_off {
            return err(format!("function {i} ({name}): end before entry"));
        }
        Ok(Func {
            entry,
            end,
            name,
            pcsp,
            flag,
            func_id,
            pcdata,
            funcdata,
        })
    }

    /// Decodes the pc-value table at `off` (relative to pctab) for a function starting at
    /// `entry`: `(pc, value)` steps, each value holding from its pc to the next step's.
    /// The last step's pc is the end of the covered range.
    pub fn pcvalue(&self, off: u32, entry: u64, end: u64) -> Result<Vec<(u64, i32)>> {
        if off == 0 {
            return Ok(vec![(entry, -1), (end, -1)]);
        }
        let mut p = self
            .pctab
            .checked_add(off as usize)
            .ok_or_else(|| Error("pcvalue offset overflow".into()))?;
        let (mut pc, mut val) = (entry, -1i32);
        let mut out = Vec::new();
        let mut first = true;
        loop {
            let (uv, n) = uvarint(self.data.get(p..).unwrap_or(&[]))?;
            p += n;
            if uv == 0 && !first {
                break;
            }
            let delta = ((uv >> 1) as i64) ^ -((uv & 1) as i64);
            val = val.wrapping_add(delta as i32);
            let (pd, n) = uvarint(self.data.get(p..).unwrap_or(&[]))?;
            p += n;
            out.push((pc, val));
            pc = pc.wrapping_add(pd.wrapping_mul(self.min_lc as u64));
            first = false;
            if pc >= end || out.len() > 1 << 20 {
                break;
            }
        }
        out.push((pc, val));
        Ok(out)
    }
}

/// The value of a decoded pc-value table at `pc`, if covered.
pub fn value_at(table: &[(u64, i32)], pc: u64) -> Option<i32> {
    let i = table.partition_point(|&(p, _)| p <= pc);
    if i == 0 || i >= table.len() {
        return None;
    }
    Some(table[i - 1].1)
}

fn uvarint(b: &[u8]) -> Result<(u64, usize)> {
    let mut v = 0u64;
    for (i, &c) in b.iter().enumerate().take(10) {
        v |= ((c & 0x7f) as u64) << (7 * i);
        if c & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    err("truncated varint in a pc-value table")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcvalue_decodes_zigzag_steps_and_stops_at_zero() {
        // A hand-made table: value 0 for 4 pcs, then 32 for 8, then 0 for 4, then end.
        // First pair: zigzag(+1)=2 (val -1 → 0), pc delta 4; then +32 → 64, delta 8;
        // then -32 → 63, delta 4; then 0 terminator.
        let mut data = vec![0u8; 64];
        data[0..4].copy_from_slice(&MAGIC_GO120.to_le_bytes());
        let table = [2u8, 4, 64, 8, 63, 4, 0];
        data[40..47].copy_from_slice(&table);
        let t = Pclntab {
            data: &data,
            big_endian: false,
            min_lc: 1,
            ptr_size: 8,
            nfunc: 0,
            text_start: 0,
            header_text_start: 0,
            funcname: 0,
            pctab: 40,
            functab: 0,
        };
        let v = t.pcvalue(0, 0x1000, 0x1010).unwrap();
        assert_eq!(v, [(0x1000, -1), (0x1010, -1)]);
        let t = Pclntab { pctab: 39, ..t };
        let v = t.pcvalue(1, 0x1000, 0x1010).unwrap();
        assert_eq!(v, [(0x1000, 0), (0x1004, 32), (0x100c, 0), (0x1010, 0)]);
        assert_eq!(value_at(&v, 0x1005), Some(32));
        assert_eq!(value_at(&v, 0x100c), Some(0));
        assert_eq!(value_at(&v, 0x1010), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Pclntab::parse(b"", 0).is_err());
        assert!(Pclntab::parse(&[0xff; 7], 0).is_err());
        let mut h = vec![0u8; 8 + 8 * 8];
        h[0..4].copy_from_slice(&MAGIC_GO120.to_le_bytes());
        h[6] = 1;
        h[7] = 8;
        h[8..16].copy_from_slice(&u64::MAX.to_le_bytes()); // nfunc absurd
        assert!(Pclntab::parse(&h, 0).is_err());
        h[0..4].copy_from_slice(&0xffff_fffbu32.to_le_bytes());
        assert!(
            Pclntab::parse(&h, 0)
                .unwrap_err()
                .0
                .contains("before go1.20")
        );
        assert!(uvarint(&[0x80, 0x80]).is_err());
    }
}
