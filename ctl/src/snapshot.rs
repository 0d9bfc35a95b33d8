//! The target's answer: its counters, and per thread its record and a stack copy.

use std::collections::BTreeMap;

pub struct Snapshot<'a> {
    /// Counters in the order the target wrote them.
    pub counters: Vec<(&'a str, u64)>,
    pub threads: Vec<Thread<'a>>,
}

pub struct Thread<'a> {
    /// key=value fields of its line (name excluded).
    pub fields: BTreeMap<&'a str, &'a str>,
    pub name: &'a str,
    pub stack: &'a [u8],
}

impl Thread<'_> {
    pub fn number(&self, key: &str) -> Option<u64> {
        let v = self.fields.get(key)?;
        match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => v.parse().ok(),
        }
    }
}

impl Snapshot<'_> {
    pub fn counter(&self, key: &str) -> Option<u64> {
        self.counters
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}

/// Parses the memfd's bytes (layout: stacks, header, header offset).
pub fn parse(bytes: &[u8]) -> Result<Snapshot<'_>, String> {
    let bad = || "a malformed snapshot".to_string();
    let (body, offset) = bytes.split_at(bytes.len().checked_sub(8).ok_or_else(bad)?);
    let offset = u64::from_le_bytes(offset.try_into().map_err(|_| bad())?) as usize;
    let stacks = body.get(..offset).ok_or_else(bad)?;
    let header = std::str::from_utf8(&body[offset..]).map_err(|_| bad())?;
    let mut lines = header.lines();
    if lines.next() != Some("greenify-snapshot 1") {
        return Err(bad());
    }
    let mut snap = Snapshot {
        counters: Vec::new(),
        threads: Vec::new(),
    };
    for line in lines {
        if line == "end" {
            return Ok(snap);
        }
        if let Some(rest) = line.strip_prefix("thread ") {
            let (rest, name) = rest.split_once(" name=").unwrap_or((rest, ""));
            let fields: BTreeMap<&str, &str> =
                rest.split(' ').filter_map(|f| f.split_once('=')).collect();
            let mut t = Thread {
                fields,
                name,
                stack: &[],
            };
            if let (Some(at), Some(len)) = (t.number("copy_at"), t.number("copy_len")) {
                t.stack = stacks
                    .get(at as usize..(at + len) as usize)
                    .ok_or_else(bad)?;
            }
            snap.threads.push(t);
        } else if let Some((k, v)) = line.split_once(' ') {
            snap.counters.push((k, v.parse().map_err(|_| bad())?));
        }
    }
    Err(bad())
}

/// The process's short name, as the kernel has it.
pub fn program(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().replace([' ', '='], "_"))
        .unwrap_or_default()
}

/// `greenify stats PID`: the exit line's counters, now.
pub fn print_stats(pid: i32, bytes: &[u8], json: bool) {
    let snap = match parse(bytes) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("greenify: {pid}: {e}");
            return;
        }
    };
    let program = program(pid);
    let shown = snap
        .counters
        .iter()
        .filter(|(k, _)| *k != "now_ns" && *k != "snapshot_us");
    if json {
        let mut out = format!("{{\"pid\":{pid},\"program\":{}", json_string(&program));
        for (k, v) in shown {
            out.push_str(&format!(",\"{k}\":{v}"));
        }
        out.push('}');
        println!("{out}");
    } else {
        let mut out = format!("greenify stats: pid={pid} program={program}");
        for (k, v) in shown {
            out.push_str(&format!(" {k}={v}"));
        }
        println!("{out}");
    }
}

pub fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout the library writes (see src/runtime/sched/snapshot.rs): stacks, header,
    /// header offset.
    #[test]
    fn parses_counters_threads_and_their_stack_copies() {
        let stacks = b"AAAABBBBBB";
        let header = "greenify-snapshot 1\nnow_ns 5\nalive 2\n\
                      thread tid=7 state=parked reason=read since_ns=1 fds=3:read,4:write pc=0x10 sp=0x20 fp=0x0 copy_at=0 copy_len=4 name=main x\n\
                      thread tid=8 state=ready pc=0x11 sp=0x21 fp=0x1 copy_at=4 copy_len=6 name=\n\
                      snapshot_us 3\nend\n";
        let mut bytes = stacks.to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&(stacks.len() as u64).to_le_bytes());
        let snap = parse(&bytes).expect("parses");
        assert_eq!(snap.counter("alive"), Some(2));
        assert_eq!(snap.counter("snapshot_us"), Some(3));
        assert_eq!(snap.threads.len(), 2);
        let main = &snap.threads[0];
        assert_eq!(main.name, "main x");
        assert_eq!(main.fields.get("fds"), Some(&"3:read,4:write"));
        assert_eq!(main.number("pc"), Some(0x10));
        assert_eq!(main.stack, b"AAAA");
        assert_eq!(snap.threads[1].stack, b"BBBBBB");
        assert_eq!(snap.threads[1].name, "");
    }

    #[test]
    fn rejects_a_truncated_snapshot() {
        assert!(parse(b"greenify-snapshot 1\nalive 1\n").is_err());
        assert!(parse(b"").is_err());
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
