//! `greenify dump PID`: every green thread, its wait, and its stack symbolised.

use crate::snapshot::{self, Thread};
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};
use object::{Object, ObjectSection, ObjectSegment};
use std::collections::BTreeMap;
use std::fmt::Write;

/// At most this many frames per thread.
const MAX_FRAMES: usize = 64;

/// One mapped ELF file of the target.
struct Image {
    path: String,
    /// Load bias: runtime address minus the file's address.
    bias: u64,
    range: std::ops::Range<u64>,
    /// Symbols and debug info (None if the file cannot be read).
    loader: Option<addr2line::Loader>,
    is_greenify: bool,
    /// Its `.text`: where it is in the file's addresses, and its bytes.
    text: Option<(std::ops::Range<u64>, Vec<u8>)>,
    /// The dynamic linker, libc, libstdc++: no file:line for their frames.
    is_system: bool,
}

struct Frame<'a> {
    image: Option<&'a Image>,
    pc: u64,
    /// A return address: the call is the instruction before.
    is_return: bool,
    /// The frame was interrupted by a signal (preemption).
    after_signal: bool,
}

pub fn print(pid: i32, bytes: &[u8]) {
    let snap = match snapshot::parse(bytes) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("greenify: {pid}: {e}");
            return;
        }
    };
    let images = images(pid);
    let mut unwinder = UnwinderX86_64::new();
    for image in &images {
        if let Some(module) = module(image) {
            unwinder.add_module(module);
        }
    }
    let mut cache = CacheX86_64::<_>::new();
    let now = snap.counter("now_ns").unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "greenify dump: pid={pid} program={} threads={} ready={} (the program paused {:.1} ms for it)",
        snapshot::program(pid),
        snap.threads.len(),
        snap.counter("ready").unwrap_or(0),
        snap.counter("snapshot_us").unwrap_or(0) as f64 / 1000.0
    );
    for t in &snap.threads {
        let _ = writeln!(
            out,
            "\nthread {} \"{}\" {}",
            t.fields.get("tid").unwrap_or(&"?"),
            t.name,
            wait(t, now)
        );
        let frames = unwind(t, &images, &unwinder, &mut cache);
        let lines = match t.fields.get("unseen") {
            Some(why) if frames.is_empty() => vec![unseen(why)],
            _ => describe(&frames),
        };
        for line in lines {
            let _ = writeln!(out, "    {line}");
        }
    }
    print!("{out}");
}

/// What the thread does: its state, what it waits for and for how long.
fn wait(t: &Thread, now: u64) -> String {
    let state = t.fields.get("state").copied().unwrap_or("?");
    if state != "parked" {
        return match state {
            "ready" => "ready (runnable, waits for its turn)".into(),
            "running" => "running".into(),
            s => s.into(),
        };
    }
    let reason = t.fields.get("reason").copied().unwrap_or("?");
    let mut s = format!("parked in {reason}");
    for (key, value) in &t.fields {
        match *key {
            "addr" => {
                let _ = write!(s, ", on address {value}");
            }
            "owner" => {
                let _ = write!(s, ", held by thread {value}");
            }
            "joins" => {
                let _ = write!(s, ", joining thread {value}");
            }
            "deadline_in_ms" => {
                let _ = write!(s, ", wakes in {value} ms");
            }
            _ => {}
        }
    }
    for fd in t.fields.get("fds").into_iter().flat_map(|f| f.split(',')) {
        if let Some((fd, interest)) = fd.split_once(':') {
            let _ = write!(s, ", fd {fd} ({interest})");
        }
    }
    if let Some(since) = t.number("since_ns") {
        let waited = now.saturating_sub(since) as f64 / 1e9;
        let _ = write!(s, ", for {waited:.3} s");
    }
    s
}

/// The ELF files mapped in `pid`, from /proc/PID/maps.
fn images(pid: i32) -> Vec<Image> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    // path -> (lowest start, highest end, start of the mapping at file offset 0)
    let mut files: BTreeMap<String, (u64, u64, Option<u64>)> = BTreeMap::new();
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(_perms), Some(offset), _, _, Some(path)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            continue;
        };
        if !path.starts_with('/') {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(offset)) = (
            u64::from_str_radix(start, 16),
            u64::from_str_radix(end, 16),
            u64::from_str_radix(offset, 16),
        ) else {
            continue;
        };
        let e = files.entry(path.to_string()).or_insert((start, end, None));
        e.0 = e.0.min(start);
        e.1 = e.1.max(end);
        if offset == 0 && e.2.is_none() {
            e.2 = Some(start);
        }
    }
    let mut images = Vec::new();
    for (path, (start, end, base)) in files {
        let Some(base) = base else { continue };
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        let Ok(file) = object::File::parse(&*data) else {
            continue;
        };
        let first = file
            .segments()
            .find(|s| s.file_range().0 == 0)
            .map(|s| s.address() & !0xfff)
            .unwrap_or(0);
        let name = path.rsplit('/').next().unwrap_or("");
        let text = file
            .section_by_name(".text")
            .and_then(|s| Some((s.address()..s.address() + s.size(), s.data().ok()?.to_vec())));
        images.push(Image {
            text,
            bias: base.wrapping_sub(first),
            range: start..end,
            loader: addr2line::Loader::new(&path).ok(),
            is_greenify: name == "libgreenify.so",
            is_system: name.starts_with("ld-linux")
                || name.starts_with("libc.so")
                || name.starts_with("libstdc++")
                || name.starts_with("libgcc_s"),
            path,
        });
    }
    images
}

/// The unwind sections of `image`, for framehop.
fn module(image: &Image) -> Option<Module<Vec<u8>>> {
    let data = std::fs::read(&image.path).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let section = |name: &str| {
        let s = file.section_by_name(name)?;
        Some((s.address()..s.address() + s.size(), s.data().ok()?.to_vec()))
    };
    let text = section(".text");
    let eh_frame = section(".eh_frame");
    let eh_frame_hdr = section(".eh_frame_hdr");
    let got = file
        .section_by_name(".got")
        .map(|s| s.address()..s.address() + s.size());
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: text.as_ref().map(|t| t.0.clone()),
        text: text.map(|t| t.1),
        eh_frame_svma: eh_frame.as_ref().map(|t| t.0.clone()),
        eh_frame: eh_frame.map(|t| t.1),
        eh_frame_hdr_svma: eh_frame_hdr.as_ref().map(|t| t.0.clone()),
        eh_frame_hdr: eh_frame_hdr.map(|t| t.1),
        got_svma: got,
        ..Default::default()
    };
    Some(Module::new(
        image.path.clone(),
        image.range.clone(),
        image.bias,
        info,
    ))
}

fn image_of(images: &[Image], pc: u64) -> Option<&Image> {
    images.iter().find(|i| i.range.contains(&pc))
}

/// Whether `pc` is the kernel's signal return trampoline (glibc's `__restore_rt`, a
/// local symbol that a stripped libc does not name): `mov $15, %rax; syscall`.
fn is_sigreturn(image: &Image, pc: u64) -> bool {
    const RESTORE_RT: [u8; 9] = [0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05];
    let Some((range, bytes)) = &image.text else {
        return false;
    };
    let svma = pc.wrapping_sub(image.bias);
    if !range.contains(&svma) {
        return false;
    }
    let at = (svma - range.start) as usize;
    bytes.get(at..at + RESTORE_RT.len()) == Some(&RESTORE_RT[..])
}

fn symbol(image: &Image, pc: u64) -> Option<String> {
    let name = image
        .loader
        .as_ref()?
        .find_symbol(pc.wrapping_sub(image.bias))?;
    Some(addr2line::demangle_auto(name.into(), None).into_owned())
}

/// The thread's frames, from its registers at its last switch and its stack copy.
fn unwind<'a>(
    t: &Thread,
    images: &'a [Image],
    unwinder: &UnwinderX86_64<Vec<u8>>,
    cache: &mut CacheX86_64,
) -> Vec<Frame<'a>> {
    let (Some(pc), Some(sp), Some(fp)) = (t.number("pc"), t.number("sp"), t.number("fp")) else {
        return Vec::new();
    };
    let stack = t.stack;
    let mut read = |addr: u64| {
        let at = addr.checked_sub(sp).ok_or(())? as usize;
        let bytes = stack.get(at..at + 8).ok_or(())?;
        Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| ())?))
    };
    let mut frames = vec![Frame {
        image: image_of(images, pc),
        pc,
        is_return: false,
        after_signal: false,
    }];
    let mut regs = UnwindRegsX86_64::new(pc, sp, fp);
    let mut address = FrameAddress::from_instruction_pointer(pc);
    while frames.len() < MAX_FRAMES {
        let Ok(Some(ret)) = unwinder.unwind_frame(address, &mut regs, cache, &mut read) else {
            break;
        };
        let image = image_of(images, ret);
        let is_sigreturn = image.is_some_and(|i| is_sigreturn(i, ret));
        if is_sigreturn {
            // The kernel's signal frame: the ucontext starts at the stack pointer; its
            // saved rbp, rsp and rip are gregs 10, 15 and 16 (gregs start at byte 40).
            let uc = regs.sp();
            let (Ok(bp), Ok(sp), Ok(ip)) = (read(uc + 120), read(uc + 160), read(uc + 168)) else {
                break;
            };
            regs = UnwindRegsX86_64::new(ip, sp, bp);
            address = FrameAddress::from_instruction_pointer(ip);
            frames.push(Frame {
                image: image_of(images, ip),
                pc: ip,
                is_return: false,
                after_signal: true,
            });
            continue;
        }
        let Some(next) = FrameAddress::from_return_address(ret) else {
            break;
        };
        address = next;
        frames.push(Frame {
            image,
            pc: ret,
            is_return: true,
            after_signal: false,
        });
    }
    frames
}

/// One line per frame, greenify's own frames folded into one line per run (named by
/// its outermost frame: the hooked call the program made).
fn describe(frames: &[Frame]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut i = 0;
    let mut n = 0;
    while i < frames.len() {
        let f = &frames[i];
        let greenify = f.image.is_some_and(|im| im.is_greenify);
        if greenify {
            let mut last = i;
            while last + 1 < frames.len()
                && frames[last + 1].image.is_some_and(|im| im.is_greenify)
                && !frames[last + 1].after_signal
            {
                last += 1;
            }
            let outer = &frames[last];
            let preempted = frames.get(last + 1).is_some_and(|f| f.after_signal);
            let name = if preempted {
                "(preemption signal handler)".into()
            } else {
                outer
                    .image
                    .and_then(|im| symbol(im, lookup_pc(outer)))
                    .unwrap_or_else(|| "(thread start)".into())
            };
            lines.push(format!("#{n:<2} {name} [greenify]"));
            i = last + 1;
        } else {
            if f.after_signal {
                lines.push("    -- preempted here --".into());
            }
            lines.push(format!("#{n:<2} {}", frame_text(f)));
            i += 1;
        }
        n += 1;
    }
    if lines.is_empty() {
        lines.push("(not started yet: no frames)".into());
    }
    lines
}

/// Why a thread running on another worker has no frames (`unseen=`, see the library's
/// runtime/sched/look.rs).
fn unseen(why: &str) -> String {
    let because = match why {
        "greenify" => "its worker runs greenify's own code, where the dump does not stop it",
        "syscall" => "its worker waits in a system call, which a signal would interrupt",
        "sigstack" => "it runs a signal handler on its alternate stack",
        "late" => "its worker did not answer in time (a loaded machine)",
        other => other,
    };
    format!("(no frames: {because})")
}

/// The address to look up: a return address's call instruction is the byte before.
fn lookup_pc(f: &Frame) -> u64 {
    if f.is_return {
        f.pc - 1
    } else {
        f.pc
    }
}

fn frame_text(f: &Frame) -> String {
    let Some(image) = f.image else {
        return format!("{:#x}", f.pc);
    };
    let pc = lookup_pc(f);
    let file = image.path.rsplit('/').next().unwrap_or("");
    let name = symbol(image, pc).unwrap_or_else(|| format!("{:#x}", f.pc));
    let mut text = name;
    if !image.is_system {
        if let Some(loader) = &image.loader {
            if let Ok(Some(loc)) = loader.find_location(pc.wrapping_sub(image.bias)) {
                if let (Some(path), Some(line)) = (loc.file, loc.line) {
                    let short = path.rsplit('/').next().unwrap_or(path);
                    let _ = write!(text, " at {short}:{line}");
                }
            }
        }
    }
    let _ = write!(text, " ({file})");
    text
}
