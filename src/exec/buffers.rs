//! Bounded byte buffers for child output: a tail keeper and a line splitter.
//! Pure; no IO.

use std::collections::VecDeque;

/// Keeps only the last `limit` bytes pushed, and counts all of them.
#[derive(Debug)]
pub(crate) struct TailBuffer {
    limit: usize,
    buf: VecDeque<u8>,
    total: u64,
}

impl TailBuffer {
    pub(crate) fn new(limit: usize) -> Self {
        TailBuffer {
            limit,
            buf: VecDeque::with_capacity(limit.min(64 * 1024)),
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let keep = &chunk[chunk.len().saturating_sub(self.limit)..];
        let overflow = (self.buf.len() + keep.len()).saturating_sub(self.limit);
        self.buf.drain(..overflow);
        self.buf.extend(keep);
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The kept bytes, lossily decoded (the tail may start inside a UTF-8 sequence).
    pub(crate) fn to_string_lossy(&self) -> String {
        let (a, b) = self.buf.as_slices();
        let mut bytes = Vec::with_capacity(a.len() + b.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Cuts a byte stream into `\n`-terminated lines (without the `\n`). A line longer than
/// `max_line` is emitted in pieces of `max_line` bytes, so memory stays bounded
/// whatever the child writes.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    max_line: usize,
    pending: Vec<u8>,
    /// A line was just cut at `max_line`; a `\n` right after it ends that line
    /// rather than an empty one.
    after_cut: bool,
}

impl LineSplitter {
    pub(crate) fn new(max_line: usize) -> Self {
        LineSplitter {
            max_line: max_line.max(1),
            pending: Vec::new(),
            after_cut: false,
        }
    }

    pub(crate) fn push(&mut self, mut chunk: &[u8], mut emit: impl FnMut(&[u8])) {
        while !chunk.is_empty() {
            if std::mem::take(&mut self.after_cut) && chunk[0] == b'\n' {
                chunk = &chunk[1..];
                continue;
            }
            let room = self.max_line - self.pending.len();
            let window = &chunk[..chunk.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.emit_with_pending(&window[..i], &mut emit);
                    chunk = &chunk[i + 1..];
                }
                None if window.len() == room => {
                    self.emit_with_pending(window, &mut emit);
                    chunk = &chunk[room..];
                    self.after_cut = true;
                }
                None => {
                    self.pending.extend_from_slice(window);
                    chunk = &[];
                }
            }
        }
    }

    /// Emits an unterminated last line, if any.
    pub(crate) fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
    }

    /// Drops a partial line (used when the underlying file was truncated).
    pub(crate) fn reset(&mut self) {
        self.pending.clear();
        self.after_cut = false;
    }

    fn emit_with_pending(&mut self, tail: &[u8], emit: &mut impl FnMut(&[u8])) {
        if self.pending.is_empty() {
            emit(tail);
        } else {
            self.pending.extend_from_slice(tail);
            emit(&self.pending);
            self.pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lines(max: usize, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |l| out.push(l.to_vec()));
        }
        s.finish(|l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn tail_keeps_last_bytes_across_pushes() {
        let mut t = TailBuffer::new(5);
        t.push(b"abc");
        t.push(b"defg");
        assert_eq!(t.to_string_lossy(), "cdefg");
        t.push(b"0123456789");
        assert_eq!(t.to_string_lossy(), "56789");
        assert_eq!(t.total(), 17);
    }

    #[test]
    fn zero_limit_keeps_nothing_but_counts() {
        let mut t = TailBuffer::new(0);
        t.push(b"abc");
        assert_eq!(t.to_string_lossy(), "");
        assert_eq!(t.total(), 3);
    }

    #[test]
    fn lines_join_across_chunks_and_last_partial_is_flushed() {
        let got = lines(100, &[b"he", b"llo\nwor", b"ld\n\nend"]);
        assert_eq!(
            got,
            vec![
                b"hello".to_vec(),
                b"world".to_vec(),
                vec![],
                b"end".to_vec()
            ]
        );
    }

    #[test]
    fn long_lines_are_split_at_max() {
        let got = lines(4, &[b"abcdefghij\nxy"]);
        let want: Vec<&[u8]> = vec![b"abcd", b"efgh", b"ij", b"xy"];
        assert_eq!(got, want);
    }

    #[test]
    fn line_of_exactly_max_bytes_is_one_line() {
        let got = lines(4, &[b"abcd", b"\nefgh\n\n"]);
        let want: Vec<&[u8]> = vec![b"abcd", b"efgh", b""];
        assert_eq!(got, want);
    }

    proptest! {
        #[test]
        fn tail_equals_suffix(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..20), limit in 0usize..64) {
            let mut t = TailBuffer::new(limit);
            let all: Vec<u8> = chunks.concat();
            for c in &chunks { t.push(c); }
            let want = &all[all.len().saturating_sub(limit)..];
            prop_assert_eq!(t.to_string_lossy(), String::from_utf8_lossy(want).into_owned());
            prop_assert_eq!(t.total(), all.len() as u64);
        }

        /// Whatever the chunking, the lines are the same and joining them restores the
        /// input (up to the split points of over-long lines).
        #[test]
        fn splitting_is_independent_of_chunking(data in prop::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..200), cut in 0usize..200, max in 1usize..16) {
            let cut = cut.min(data.len());
            let whole = lines(max, &[&data]);
            let parts = lines(max, &[&data[..cut], &data[cut..]]);
            prop_assert_eq!(&whole, &parts);
            prop_assert!(whole.iter().all(|l| l.len() <= max && !l.contains(&b'\n')));
            let payload: Vec<u8> = data.iter().copied().filter(|&b| b != b'\n').collect();
            prop_assert_eq!(whole.concat(), payload);
        }
    }
}
