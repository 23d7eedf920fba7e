//! Restores with the real pgBackRest, on clusters of their own (archiving is cluster-wide), on
//! each server: where Debian's pgBackRest can read the version, point-in-time recovery to the
//! second, the disaster, damage and drills; where it cannot, the refusal before anything
//! changes. The fixtures are `crate::backup`'s.

/// Restores, drills and the audit's backup checks against a damaged repository.
mod drill;
/// Holes in the WAL archive (missing, truncated, damaged): refused restores, the listing, the audit.
mod holes;
/// Point in time to the second, and the host that dies.
mod pitr;
