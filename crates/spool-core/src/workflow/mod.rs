//! The durable workflow state machine, pure: history events, `fold`, `decide`, retry and
//! timeout math, compensation order.
//!
//! - [`event`]: the versioned history event schema (Temporal's names and fields).
//! - [`program`]: the compiled step graph a run executes.
//! - [`state`]: [`RunState`] and [`fold`].
//! - [`decide`](mod@decide): inputs → events + effects.
//! - [`retry`]: Temporal's retry policy.
//! - [`duration`]: duration text forms.
pub mod decide;
pub mod duration;
pub mod event;
pub mod program;
pub mod retry;
pub mod state;

pub use decide::{
    decide, ActivityTask, ChildOutcome, DecideError, Decision, Effect, Input, TimerKey, Verdict,
};
pub use event::{ActivityInput, ActivityOutput, Event, EventAttributes, Failure, ParentRef};
pub use program::Program;
pub use retry::RetryPolicy;
pub use state::{fold, FoldError, RunState, RunStatus};

#[cfg(test)]
mod tests;
