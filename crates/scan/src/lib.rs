//! `gorace scan`: finds compiler-generated race windows in Go binaries.
//!
//! # Algorithm
//! For every function in the pclntab, decode its instructions with a per-architecture
//! model of each instruction's effect on SP ([`sp_model`]), and walk them keeping the
//! difference between the real frame size (what SP says) and the frame size the `pcsp`
//! table claims. Across an instruction that adds `d` to SP, pcsp must change by exactly
//! `-d`; when it does not, the unwinder's idea of the frame is wrong from the next
//! instruction until the difference returns to zero: a *window*. Control flow resyncs
//! the walk (after a return or jump, or where pcsp changes at an instruction that does
//! not write SP), and SP written from an unknown value (stack switches) is classified,
//! not flagged. Each window gets a verdict mirroring the runtime's `isAsyncSafePoint`:
//! **crash** when async preemption may stop a goroutine there (so a GC stack scan or a
//! panic unwinds with the wrong frame), **observer** when only profilers, debuggers or
//! core dumps can see it (assembly functions, unsafe points, runtime functions, no
//! pointer maps).

pub mod cli;
pub mod elf;
pub mod pclntab;
pub mod sp_model;

use pclntab::{Func, Pclntab};
use serde::Serialize;
use sp_model::{Insn, SpWrite};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Crash,
    Observer,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowInsn {
    pub addr: String,
    pub bytes: String,
    pub text: String,
    pub pcsp: i32,
    pub real_sp_offset: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub function: String,
    pub start: String,
    pub end: String,
    /// The SP-writing instruction that opened the window, then the instructions inside.
    pub instructions: Vec<WindowInsn>,
    /// The innermost inlined function at the window's start, when the code there was
    /// inlined into `function` (what `isAsyncSafePoint` checks the name of).
    pub inlined: Option<String>,
    pub unsafe_point: i32,
    pub flags: u8,
    pub verdict: Verdict,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub path: String,
    pub arch: String,
    pub go_version: Option<String>,
    /// Base address of function entry offsets, and where it came from ("pclntab header",
    /// "moduledata", "runtime.text symbol", ".text section").
    pub text_base: String,
    pub text_base_source: String,
    pub functions: usize,
    pub unknown_sp_writes: usize,
    pub windows: Vec<Window>,
}

impl Report {
    pub fn crashes(&self) -> usize {
        self.windows
            .iter()
            .filter(|w| w.verdict == Verdict::Crash)
            .count()
    }
}

/// Architectures whose SP model exists.
pub const SUPPORTED_ARCHES: &[&str] = &["amd64", "arm64"];

/// Scans one binary's bytes.
pub fn scan(path: &str, data: &[u8]) -> Result<Report, String> {
    let bin = elf::Binary::parse(data)?;
    let tab = Pclntab::parse(bin.pclntab, bin.text_fallback).map_err(|e| e.to_string())?;
    let mut report = Report {
        path: path.to_string(),
        arch: bin.arch.to_string(),
        go_version: bin.go_version.clone(),
        text_base: format!("{:#x}", tab.text_start),
        text_base_source: if tab.header_text_start != 0 {
            "pclntab header"
        } else {
            bin.text_fallback_source
        }
        .to_string(),
        functions: tab.nfunc,
        unknown_sp_writes: 0,
        windows: Vec::new(),
    };
    let cx = Context {
        bin: &bin,
        tab: &tab,
    };
    let mut insns = Vec::new();
    for i in 0..tab.nfunc {
        let f = tab.func(i).map_err(|e| e.to_string())?;
        let Some(code) = bin.code(f.entry, f.end) else {
            continue; // e.g. a function in a section that is not in the file
        };
        match bin.arch {
            "arm64" => sp_model::arm64_decode(code, f.entry, &mut insns),
            _ => sp_model::amd64_decode(code, f.entry, &mut insns),
        }
        check_function(&cx, &f, code, &insns, &mut report)?;
    }
    Ok(report)
}

/// Where a PC is: its function and the chain of inlined calls there.
#[derive(Debug, Clone, Serialize)]
pub struct Location {
    pub pc: String,
    pub function: String,
    pub entry: String,
    /// Inlined functions at the PC, innermost first (empty when not inlined).
    pub inlined: Vec<String>,
}

/// Maps `pc` to its function and inlined calls (what a traceback would print).
pub fn locate(data: &[u8], pc: u64) -> Result<Location, String> {
    let bin = elf::Binary::parse(data)?;
    let tab = Pclntab::parse(bin.pclntab, bin.text_fallback).map_err(|e| e.to_string())?;
    let i = tab
        .find(pc)
        .ok_or_else(|| format!("{pc:#x} is not in any Go function"))?;
    let f = tab.func(i).map_err(|e| e.to_string())?;
    let cx = Context {
        bin: &bin,
        tab: &tab,
    };
    Ok(Location {
        pc: format!("{pc:#x}"),
        function: f.name.clone(),
        entry: format!("{:#x}", f.entry),
        inlined: cx.inline_chain(&f, pc)?,
    })
}

struct Context<'b, 'a> {
    bin: &'b elf::Binary<'a>,
    tab: &'b Pclntab<'a>,
}

impl Context<'_, '_> {
    /// The inlined calls at `pc`, innermost first, from the function's inline tree
    /// (`FUNCDATA_InlTree`, records of `runtime.inlinedCall`) and `PCDATA_InlTreeIndex`,
    /// following `parentPc` outwards like the runtime's `inlineUnwinder`.
    fn inline_chain(&self, f: &Func, pc: u64) -> Result<Vec<String>, String> {
        let mut chain = Vec::new();
        let Some(&idx_off) = f.pcdata.get(pclntab::PCDATA_INL_TREE_INDEX) else {
            return Ok(chain);
        };
        if idx_off == 0 || !f.has_funcdata(pclntab::FUNCDATA_INL_TREE) {
            return Ok(chain);
        }
        let gofunc = self
            .bin
            .gofunc
            .ok_or("inline tree present but moduledata.gofunc not found")?;
        let tree = gofunc.wrapping_add(f.funcdata[pclntab::FUNCDATA_INL_TREE] as u64);
        let index = self
            .tab
            .pcvalue(idx_off, f.entry, f.end)
            .map_err(|e| e.to_string())?;
        let mut pc = pc;
        while let Some(i) = pclntab::value_at(&index, pc).filter(|&i| i >= 0) {
            if chain.len() >= 256 {
                return Err(format!("{}: inline tree cycle", f.name));
            }
            let rec = self
                .bin
                .bytes_at(tree.wrapping_add(16 * i as u64), 16)
                .ok_or_else(|| format!("{}: inline tree entry {i} out of range", f.name))?;
            let field = |k: usize| {
                let b: [u8; 4] = rec[k..k + 4].try_into().unwrap();
                if self.tab.big_endian {
                    i32::from_be_bytes(b)
                } else {
                    i32::from_le_bytes(b)
                }
            };
            chain.push(self.tab.name_at(field(4)).map_err(|e| e.to_string())?);
            pc = f.entry.wrapping_add(field(8) as u64);
        }
        Ok(chain)
    }
}

fn check_function(
    cx: &Context,
    f: &Func,
    code: &[u8],
    insns: &[Insn],
    report: &mut Report,
) -> Result<(), String> {
    let tab = cx.tab;
    let pcsp = tab
        .pcvalue(f.pcsp, f.entry, f.end)
        .map_err(|e| e.to_string())?;
    let unsafe_off = f
        .pcdata
        .get(pclntab::PCDATA_UNSAFE_POINT)
        .copied()
        .unwrap_or(0);
    let at = |pc: u64| pclntab::value_at(&pcsp, pc);
    let arch = report.arch.clone();
    let window_insn = |ins: &Insn, pcsp: i32, real: i64| {
        let lo = ins.addr.wrapping_sub(f.entry) as usize;
        let rest = code.get(lo..).unwrap_or(&[]);
        let bytes = rest.get(..ins.len).unwrap_or(rest);
        WindowInsn {
            addr: format!("{:#x}", ins.addr),
            bytes: bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" "),
            text: sp_model::disassemble(&arch, rest, ins.addr),
            pcsp,
            real_sp_offset: real,
        }
    };
    // diff = real frame size - pcsp's frame size, at the start of the current instruction.
    let mut diff: i64 = 0;
    let mut open: Option<Window> = None;
    for ins in insns {
        let (Some(here), next_pc) = (at(ins.addr), ins.addr.wrapping_add(ins.len as u64)) else {
            continue;
        };
        if let Some(w) = open.as_mut().filter(|_| diff != 0) {
            w.instructions
                .push(window_insn(ins, here, (here as i64).wrapping_add(diff)));
        }
        let next = if next_pc < f.end { at(next_pc) } else { None };
        let new_diff = match (ins.sp, next) {
            (SpWrite::Delta(d), Some(n)) => (here as i64)
                .wrapping_add(diff)
                .wrapping_sub(d)
                .wrapping_sub(n as i64),
            (SpWrite::Unknown, _) => {
                report.unknown_sp_writes += 1;
                0
            }
            (SpWrite::None, Some(n)) if n != here => 0, // another path's frame: resync
            _ if ins.ends_flow => 0,
            (_, None) => 0,
            _ => diff,
        };
        if diff == 0 && new_diff != 0 {
            let unsafe_tab = tab
                .pcvalue(unsafe_off, f.entry, f.end)
                .map_err(|e| e.to_string())?;
            let up = pclntab::value_at(&unsafe_tab, next_pc).unwrap_or(-1);
            // An unreadable inline tree does not stop the scan: the window is reported
            // under its outer function.
            let inlined = cx
                .inline_chain(f, next_pc)
                .ok()
                .and_then(|c| c.into_iter().next());
            let (verdict, reason) = classify(f, inlined.as_deref(), up);
            open = Some(Window {
                function: f.name.clone(),
                start: format!("{next_pc:#x}"),
                end: String::new(),
                instructions: vec![window_insn(ins, here, (here as i64).wrapping_add(diff))],
                inlined,
                unsafe_point: up,
                flags: f.flag,
                verdict,
                reason,
            });
        }
        if let Some(mut w) = open.take_if(|_| diff != 0 && new_diff == 0) {
            w.end = format!("{next_pc:#x}");
            report.windows.push(w);
        }
        diff = new_diff;
    }
    if let Some(mut w) = open.take() {
        w.end = format!("{:#x}", f.end);
        report.windows.push(w);
    }
    Ok(())
}

/// Mirrors `runtime/preempt.go` `isAsyncSafePoint`'s static conditions.
/// `inlined` is the innermost inlined function at the PC, whose name the runtime checks.
pub fn classify(f: &Func, inlined: Option<&str>, unsafe_point: i32) -> (Verdict, String) {
    use pclntab::*;
    let observer = |why: &str| {
        (
            Verdict::Observer,
            format!(
                "{why}: async preemption cannot stop here; profilers, debuggers and core dumps can"
            ),
        )
    };
    if f.flag & FLAG_ASM != 0 {
        return observer("assembly function (FuncFlagAsm)");
    }
    if unsafe_point == UNSAFE_POINT_UNSAFE {
        return observer("unsafe point (PCDATA_UnsafePoint = -2)");
    }
    if !f.has_funcdata(FUNCDATA_LOCALS_POINTER_MAPS) {
        return observer("no locals pointer map");
    }
    if ["runtime.", "internal/runtime/", "reflect."]
        .iter()
        .any(|p| inlined.unwrap_or(&f.name).starts_with(p))
    {
        return observer(if inlined.is_some() {
            "inlined runtime function"
        } else {
            "runtime function"
        });
    }
    if [
        UNSAFE_POINT_RESTART1,
        UNSAFE_POINT_RESTART2,
        UNSAFE_POINT_RESTART_AT_ENTRY,
    ]
    .contains(&unsafe_point)
    {
        return (
            Verdict::Crash,
            "SP written inside a restartable sequence: preemption resumes it with a stale frame"
                .into(),
        );
    }
    (Verdict::Crash, "async preemption can stop a goroutine here; a GC stack scan or panic then unwinds with the wrong frame size".into())
}
