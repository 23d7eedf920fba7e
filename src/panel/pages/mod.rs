//! One module per page family; each handler takes the shared state and the signed-in identity.

/// Counts and schema status.
pub(crate) mod dashboard;
/// The site form: parsing, checking, drawing.
pub(crate) mod site_form;
/// A site's versions, diffs, revert and restore.
pub(crate) mod site_history;
/// What a save writes: the fields the person changed, merged three-way; the merge page.
pub(crate) mod site_merge;
/// The sites list, create, edit, delete.
pub(crate) mod sites;
/// Import and export of files.
pub(crate) mod transfer;
/// The users search, a user's record and history, forget.
pub(crate) mod users;
