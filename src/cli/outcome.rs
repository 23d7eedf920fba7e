//! What a command returns besides an error: the exit code's meaning.

/// How a command ended, beyond "it failed with an error" (exit code 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: the command ran, and what it checks is not as it should be.
    CheckFailed,
}
