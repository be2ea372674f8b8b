//! The id → line index of a parsed file, without a copy of every id.
//!
//! A map keyed by `String` held a second allocation of each id (100,000 of them in a
//! large backlog, ~5 MB). The table stores only line numbers and hashes the ids where
//! they already are: in the lines' typed issues.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Line indexes by issue id; the ids themselves are read through `id_of`.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdIndex {
    table: HashTable<u32>,
    hasher: std::collections::hash_map::RandomState,
}

impl IdIndex {
    pub(crate) fn with_capacity(n: usize) -> IdIndex {
        IdIndex {
            table: HashTable::with_capacity(n),
            hasher: Default::default(),
        }
    }

    /// The line holding `id`, if any.
    pub(crate) fn get<'l>(&self, id: &str, id_of: impl Fn(usize) -> &'l str) -> Option<usize> {
        let h = self.hasher.hash_one(id);
        self.table
            .find(h, |&i| id_of(i as usize) == id)
            .map(|&i| i as usize)
    }

    /// Points `id` at line `line`; returns the line it pointed at before.
    pub(crate) fn insert<'l>(
        &mut self,
        id: &str,
        line: usize,
        id_of: impl Fn(usize) -> &'l str,
    ) -> Option<usize> {
        let line = u32::try_from(line).expect("a backlog has fewer than 2^32 lines");
        let h = self.hasher.hash_one(id);
        let hasher = &self.hasher;
        match self.table.entry(
            h,
            |&i| id_of(i as usize) == id,
            |&i| hasher.hash_one(id_of(i as usize)),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut e) => {
                Some(std::mem::replace(e.get_mut(), line) as usize)
            }
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(line);
                None
            }
        }
    }

    /// Shifts every line at or after `at` down by one (a line was inserted at `at`).
    pub(crate) fn shift_from(&mut self, at: usize) {
        for i in self.table.iter_mut() {
            if *i as usize >= at {
                *i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_replaces_and_shifts() {
        let mut ids = vec!["a-1", "a-2", "a-3"];
        let mut ix = IdIndex::with_capacity(3);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(ix.insert(id, i, |j| ids[j]), None);
        }
        assert_eq!(ix.get("a-2", |j| ids[j]), Some(1));
        assert_eq!(ix.get("a-9", |j| ids[j]), None);
        // A later line of the same id replaces the earlier one.
        ids.push("a-2");
        assert_eq!(ix.insert("a-2", 3, |j| ids[j]), Some(1));
        assert_eq!(ix.get("a-2", |j| ids[j]), Some(3));
        // A line inserted before line 2 moves lines 2 and 3.
        ids.insert(2, "a-0");
        ix.shift_from(2);
        assert_eq!(ix.insert("a-0", 2, |j| ids[j]), None);
        assert_eq!(ix.get("a-3", |j| ids[j]), Some(3));
        assert_eq!(ix.get("a-2", |j| ids[j]), Some(4));
        assert_eq!(ix.get("a-1", |j| ids[j]), Some(0));
        assert_eq!(ix.table.len(), 4);
    }
}
