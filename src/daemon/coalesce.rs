//! Coalescing the daemon's backlog commits: the progress of a burst (several steps
//! ending, runs closing) becomes one commit instead of one per change, so the history
//! stays readable and a push carries less. Claims are committed at once: a teammate's
//! daemon should see them as early as possible.

/// Commit messages waiting for the next commit.
#[derive(Debug, Default)]
pub struct Pending {
    messages: Vec<String>,
}

impl Pending {
    /// Adds a message; true when it is the first of a new burst (arm the timer).
    pub fn push(&mut self, message: String) -> bool {
        self.messages.push(message);
        self.messages.len() == 1
    }

    /// The message of one commit covering everything pending, if anything is.
    pub fn take(&mut self) -> Option<String> {
        let messages = std::mem::take(&mut self.messages);
        combined(&messages)
    }
}

/// One message for several changes: the first as the subject with a count, all of them
/// in the body.
pub fn combined(messages: &[String]) -> Option<String> {
    match messages {
        [] => None,
        [one] => Some(one.clone()),
        [first, rest @ ..] => {
            let mut text = format!("{first} (+{} more)\n\n", rest.len());
            for m in messages {
                text.push_str(&format!("- {m}\n"));
            }
            Some(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_becomes_one_message_and_the_queue_empties() {
        let mut p = Pending::default();
        assert_eq!(p.take(), None);
        assert!(p.push("spool: t-1 plan ✓ (1/5)".into()));
        assert!(!p.push("spool: t-2 done ✓".into()));
        assert_eq!(
            p.take().as_deref(),
            Some("spool: t-1 plan ✓ (1/5) (+1 more)\n\n- spool: t-1 plan ✓ (1/5)\n- spool: t-2 done ✓\n")
        );
        assert_eq!(p.take(), None);
        assert!(p.push("spool: t-3 claimed".into()));
        assert_eq!(p.take().as_deref(), Some("spool: t-3 claimed"));
    }
}
