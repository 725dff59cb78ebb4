//! Per-architecture models of each instruction's effect on the stack pointer.
//!
//! `effect(bytes)` decodes one instruction and says whether it writes SP and, when the
//! new value is the old one plus a constant, that constant. arm64 is decoded from the
//! instruction word (ADD/SUB immediate and extended-register, loads and stores with
//! writeback, with constants built by MOVZ/MOVK/MOVN tracked per register); amd64 uses
//! iced-x86. Mnemonic text comes from the disassembler crates.

use iced_x86::{
    Decoder, DecoderOptions, Formatter, Instruction, Mnemonic, NasmFormatter, OpKind, Register,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpWrite {
    /// Does not write SP.
    None,
    /// SP += delta.
    Delta(i64),
    /// SP gets a value the model cannot know (a stack switch, or a computed frame).
    Unknown,
}

/// One decoded instruction. Text is not kept: the scan formats only the few
/// instructions it reports ([`disassemble`]), which keeps whole-binary scans fast.
#[derive(Debug, Clone, Copy)]
pub struct Insn {
    pub addr: u64,
    pub len: usize,
    pub sp: SpWrite,
    /// Ends straight-line flow (return, unconditional jump).
    pub ends_flow: bool,
}

/// arm64: decodes a function's instructions, tracking MOVZ/MOVK/MOVN constants so that
/// `ADD Rm, RSP, RSP` with a known Rm has a known effect.
pub fn arm64_decode(code: &[u8], base: u64, out: &mut Vec<Insn>) {
    let mut regs: [Option<u64>; 32] = [None; 32];
    out.clear();
    for (k, w) in code.chunks_exact(4).enumerate() {
        let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        let sp = arm64_sp_effect(word, &regs);
        arm64_track_constants(word, &mut regs);
        let ends_flow = word & 0xffff_fc1f == 0xd65f_0000 // RET
            || word & 0xffff_fc1f == 0xd61f_0000 // BR
            || word & 0xfc00_0000 == 0x1400_0000; // B
        out.push(Insn {
            addr: base.wrapping_add(4 * k as u64),
            len: 4,
            sp,
            ends_flow,
        });
    }
}

/// The assembly text of the instruction at the start of `code` (at address `addr`).
pub fn disassemble(arch: &str, code: &[u8], addr: u64) -> String {
    if arch == "arm64" {
        use yaxpeax_arch::{Decoder as _, U8Reader};
        let Some(w) = code.get(..4) else {
            return "(truncated)".into();
        };
        let decoder = yaxpeax_arm::armv8::a64::InstDecoder::default();
        return match decoder.decode(&mut U8Reader::new(w)) {
            Ok(i) => i.to_string(),
            Err(_) => format!(
                ".word {:#010x}",
                u32::from_le_bytes([w[0], w[1], w[2], w[3]])
            ),
        };
    }
    let mut decoder = Decoder::with_ip(64, code, addr, DecoderOptions::NONE);
    let ins = decoder.decode();
    let mut text = String::new();
    NasmFormatter::new().format(&ins, &mut text);
    text
}

fn bits(w: u32, lo: u32, n: u32) -> u32 {
    (w >> lo) & ((1 << n) - 1)
}

fn sext(v: u32, n: u32) -> i64 {
    ((v as i64) << (64 - n)) >> (64 - n)
}

/// The SP effect of one arm64 instruction word.
pub fn arm64_sp_effect(w: u32, regs: &[Option<u64>; 32]) -> SpWrite {
    let (rd, rn) = (bits(w, 0, 5), bits(w, 5, 5));
    // ADD/SUB (immediate): sf op S 100010 sh imm12 Rn Rd; Rd=31 is SP when S=0.
    if bits(w, 23, 6) == 0b100010 && bits(w, 29, 1) == 0 && rd == 31 {
        if rn != 31 {
            return SpWrite::Unknown; // SP = Xn ± imm: a switch to another stack
        }
        let imm = (bits(w, 10, 12) as i64) << (12 * bits(w, 22, 1));
        return SpWrite::Delta(if bits(w, 30, 1) == 1 { -imm } else { imm });
    }
    // ADD/SUB (extended register): sf op S 01011 00 1 Rm option imm3 Rn Rd.
    if bits(w, 24, 5) == 0b01011 && bits(w, 21, 1) == 1 && bits(w, 29, 1) == 0 && rd == 31 {
        let rm = bits(w, 16, 5) as usize;
        let shift = bits(w, 10, 3);
        return match (rn, regs[rm]) {
            (31, Some(v)) if rm != 31 => {
                let v = (v << shift) as i64;
                SpWrite::Delta(if bits(w, 30, 1) == 1 { -v } else { v })
            }
            _ => SpWrite::Unknown,
        };
    }
    // Loads/stores with writeback, base SP.
    if rn == 31 {
        // LDR/STR (immediate, pre/post-index): size 111 V 00 opc 0 imm9 {01,11} Rn Rt.
        if bits(w, 27, 3) == 0b111
            && bits(w, 24, 2) == 0
            && bits(w, 21, 1) == 0
            && bits(w, 10, 1) == 1
        {
            return SpWrite::Delta(sext(bits(w, 12, 9), 9));
        }
        // LDP/STP (pre/post-index): opc 101 V {001,011} L imm7 Rt2 Rn Rt.
        let mode = bits(w, 23, 3);
        if bits(w, 27, 3) == 0b101 && (mode == 0b001 || mode == 0b011) {
            let (opc, v) = (bits(w, 30, 2), bits(w, 26, 1));
            let scale = if v == 1 { 4 << opc } else { 4 << (opc >> 1) };
            return SpWrite::Delta(sext(bits(w, 15, 7), 7) * scale);
        }
    }
    // MOV SP, Xn is ADD (immediate) above; any other write to register 31 is XZR.
    SpWrite::None
}

fn arm64_track_constants(w: u32, regs: &mut [Option<u64>; 32]) {
    let rd = bits(w, 0, 5) as usize;
    let (hw, imm16) = (bits(w, 21, 2) as u64 * 16, bits(w, 5, 16) as u64);
    match bits(w, 23, 9) {
        0b1_1010_0101 => regs[rd] = Some(imm16 << hw), // MOVZ (64-bit)
        0b1_0010_0101 => regs[rd] = Some(!(imm16 << hw)), // MOVN
        0b1_1110_0101 => {
            regs[rd] = regs[rd].map(|v| (v & !(0xffff << hw)) | (imm16 << hw)) // MOVK
        }
        _ => {
            // Anything else may write Rd: forget its constant (conservative: a forgotten
            // constant makes an SP effect unknown, never wrong).
            if rd < 31 {
                regs[rd] = None;
            }
        }
    }
}

/// amd64: decodes with iced-x86; SP effects of PUSH/POP/ADD/SUB/LEA on RSP.
pub fn amd64_decode(code: &[u8], base: u64, out: &mut Vec<Insn>) {
    let mut decoder = Decoder::with_ip(64, code, base, DecoderOptions::NONE);
    out.clear();
    let mut ins = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut ins);
        let sp = amd64_sp_effect(&ins);
        let ends_flow = matches!(
            ins.mnemonic(),
            Mnemonic::Ret | Mnemonic::Jmp | Mnemonic::Ud2 | Mnemonic::Int3
        );
        out.push(Insn {
            addr: ins.ip(),
            len: ins.len(),
            sp,
            ends_flow,
        });
    }
}

pub fn amd64_sp_effect(ins: &Instruction) -> SpWrite {
    match ins.mnemonic() {
        // A call's push is popped by the callee's return: not part of this frame.
        Mnemonic::Call | Mnemonic::Ret | Mnemonic::Syscall => return SpWrite::None,
        Mnemonic::Push | Mnemonic::Pop | Mnemonic::Pushfq | Mnemonic::Popfq => {
            return SpWrite::Delta(ins.stack_pointer_increment() as i64);
        }
        _ => {}
    }
    if ins.op_count() == 0
        || ins.op0_kind() != OpKind::Register
        || ins.op0_register() != Register::RSP
    {
        return SpWrite::None;
    }
    let imm = |ins: &Instruction| match ins.op1_kind() {
        OpKind::Immediate8to64
        | OpKind::Immediate32to64
        | OpKind::Immediate8
        | OpKind::Immediate32 => Some(ins.immediate(1) as i64),
        _ => None,
    };
    match ins.mnemonic() {
        Mnemonic::Add => imm(ins).map_or(SpWrite::Unknown, SpWrite::Delta),
        Mnemonic::Sub => imm(ins).map_or(SpWrite::Unknown, |v| SpWrite::Delta(-v)),
        Mnemonic::Lea
            if ins.memory_base() == Register::RSP && ins.memory_index() == Register::None =>
        {
            SpWrite::Delta(ins.memory_displacement64() as i64)
        }
        Mnemonic::Cmp | Mnemonic::Test => SpWrite::None,
        _ => SpWrite::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eff(w: u32) -> SpWrite {
        arm64_sp_effect(w, &[None; 32])
    }

    #[test]
    fn arm64_epilogue_split_pair_from_the_go_issue() {
        // 910683ff add sp, sp, #0x1a0 ; 914047ff add sp, sp, #0x11, lsl #12
        assert_eq!(eff(0x910683ff), SpWrite::Delta(0x1a0));
        assert_eq!(eff(0x914047ff), SpWrite::Delta(0x11000));
        // d10203ff sub sp, sp, #0x80
        assert_eq!(eff(0xd10203ff), SpWrite::Delta(-0x80));
        // add x0, sp, #16 writes x0, not sp
        assert_eq!(eff(0x910043e0), SpWrite::None);
        // mov sp, x1 (add sp, x1, #0): a stack switch
        assert_eq!(eff(0x9100003f), SpWrite::Unknown);
    }

    #[test]
    fn arm64_writeback_and_register_forms() {
        // f81f0ffe str x30, [sp, #-16]!  (Go's MOVD.W R30, -16(RSP))
        assert_eq!(eff(0xf81f0ffe), SpWrite::Delta(-16));
        // f84107fe ldr x30, [sp], #16
        assert_eq!(eff(0xf84107fe), SpWrite::Delta(16));
        // a9bf7bfd stp x29, x30, [sp, #-16]!
        assert_eq!(eff(0xa9bf7bfd), SpWrite::Delta(-16));
        // a8c17bfd ldp x29, x30, [sp], #16
        assert_eq!(eff(0xa8c17bfd), SpWrite::Delta(16));
        // movz x27, #0x1, lsl #16 ; movk x27, #0x50 ; add sp, sp, x27 (uxtx)
        let code: Vec<u8> = [0xd2a0003bu32, 0xf2800a1b, 0x8b3b63ff]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let mut insns = Vec::new();
        arm64_decode(&code, 0x1000, &mut insns);
        assert_eq!(insns[2].sp, SpWrite::Delta(0x10050));
        assert_eq!(disassemble("arm64", &code[8..], 0x1008), "add sp, sp, x27");
        // Without the constant, unknown.
        assert_eq!(eff(0x8b3b63ff), SpWrite::Unknown);
    }

    #[test]
    fn amd64_push_sub_add_pop() {
        // push rbp; sub rsp, 0x18; add rsp, 0x18; pop rbp; ret; call +0
        let code = [
            0x55, 0x48, 0x83, 0xec, 0x18, 0x48, 0x83, 0xc4, 0x18, 0x5d, 0xc3, 0xe8, 0, 0, 0, 0,
        ];
        let mut i = Vec::new();
        amd64_decode(&code, 0x400000, &mut i);
        assert_eq!(disassemble("amd64", &code[1..], 0x400001), "sub rsp,18h");
        let sp: Vec<SpWrite> = i.iter().map(|x| x.sp).collect();
        use SpWrite::*;
        assert_eq!(
            sp,
            [Delta(-8), Delta(-0x18), Delta(0x18), Delta(8), None, None]
        );
        assert!(i[4].ends_flow);
    }
}
