//! The loaded modules and their code (executable PT_LOAD segments), walked with
//! `dl_iterate_phdr`: for the escapes' own range and call-site check, and the monitor's
//! list of code a thread must not be switched away from. Nothing is allocated.

/// One loaded module, as `dl_iterate_phdr` describes it.
pub struct Module<'a> {
    /// The file name without its directory (empty for the main program).
    pub name: &'a [u8],
    base: usize,
    phdrs: &'a [libc::Elf64_Phdr],
}

impl Module<'_> {
    /// Its executable segments, as `start..end` address ranges.
    pub fn code(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.phdrs
            .iter()
            .filter(|p| p.p_type == libc::PT_LOAD && p.p_flags & libc::PF_X != 0)
            .map(|p| {
                let start = self.base + p.p_vaddr as usize;
                (start, start + p.p_memsz as usize)
            })
    }
}

/// Calls `f` with each loaded module until it returns true.
pub fn each(f: &mut dyn FnMut(&Module) -> bool) {
    unsafe extern "C" fn one(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info; data is the `&mut dyn FnMut` below.
        let (info, f) = unsafe { (&*info, &mut *data.cast::<&mut dyn FnMut(&Module) -> bool>()) };
        let path = if info.dlpi_name.is_null() {
            &[][..]
        } else {
            // SAFETY: a NUL-terminated module name.
            unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }.to_bytes()
        };
        let phdrs = if info.dlpi_phdr.is_null() {
            &[][..]
        } else {
            // SAFETY: dlpi_phdr has dlpi_phnum entries.
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
        };
        let module = Module {
            name: path.rsplit(|&b| b == b'/').next().unwrap_or(path),
            base: info.dlpi_addr as usize,
            phdrs,
        };
        libc::c_int::from(f(&module))
    }
    let mut f = f;
    // SAFETY: the callback only reads the headers it is given and calls `f`, which
    // outlives the walk.
    unsafe {
        libc::dl_iterate_phdr(
            Some(one),
            (&mut f as *mut &mut dyn FnMut(&Module) -> bool).cast(),
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_code_lies_in_a_module_and_libc_is_named() {
        let here = this_code_lies_in_a_module_and_libc_is_named as *const () as usize;
        let (mut found, mut libc_seen) = (false, false);
        each(&mut |m| {
            found |= m.code().any(|(start, end)| (start..end).contains(&here));
            libc_seen |= m.name.starts_with(b"libc.so");
            false
        });
        assert!(found && libc_seen);
    }
}
