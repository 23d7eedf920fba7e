//! One module per page family; each handler takes the shared state and the signed-in identity.

/// Counts and schema status.
pub mod dashboard;
/// The site form: parsing, checking, drawing.
pub mod site_form;
/// A site's versions, diffs, revert and restore.
pub mod site_history;
/// What a save writes: the fields the person changed, merged three-way; the merge page.
pub mod site_merge;
/// The sites list, create, edit, delete.
pub mod sites;
/// Import and export of files.
pub mod transfer;
/// The users search, a user's record and history, forget.
pub mod users;
