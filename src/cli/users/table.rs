//! Users as a table: the headers and one row.

pub(super) fn user_row(user: &crate::models::User) -> Vec<String> {
    vec![
        user.user_id.clone(),
        user.email.clone().unwrap_or_default(),
        user.first_seen.to_rfc3339(),
        user.last_seen.to_rfc3339(),
    ]
}

pub(super) const USER_HEADERS: [&str; 4] = ["user_id", "email", "first_seen", "last_seen"];
