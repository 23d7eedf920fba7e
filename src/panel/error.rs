//! What a handler can fail with, and the page each failure shows.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

use super::readiness::{self, Trouble, Unavailable};
use crate::{data::DataError, db::DbError, history::RevertError};

#[derive(Debug, thiserror::Error)]
pub(crate) enum PanelError {
    /// The signed-in role may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// tailscaled could not be asked who the caller is: nobody is let in meanwhile. Why goes
    /// to the log, not to a peer nobody has identified.
    #[error("tailscaled could not be asked who you are; nobody is let in until it answers")]
    IdentityUnavailable,
    /// The database did not serve the request (see `readiness`). A pool timeout is settled
    /// into unreachable or busy by the router's `database_verdict` layer before the page goes
    /// out.
    #[error("{}", database_message(.0))]
    Database(Trouble),
    #[error(transparent)]
    Data(DataError),
    #[error(transparent)]
    Revert(RevertError),
    #[error("{0}")]
    Internal(String),
}

fn database_message(trouble: &Trouble) -> String {
    match trouble {
        Trouble::Known(Unavailable::Unreachable) => {
            "the database is unreachable: try again once it answers (/readyz says when)".to_owned()
        }
        Trouble::Known(Unavailable::Busy) => {
            "every database connection is busy: try again in a moment".to_owned()
        }
        Trouble::TimedOut => "the database did not answer in time".to_owned(),
    }
}

/// The database's own trouble hidden in a data error, if that is what it is.
fn database_trouble(error: &DataError) -> Option<Trouble> {
    match error {
        DataError::Query(e) | DataError::Db(DbError::Query(e) | DbError::Connect { source: e, .. }) => {
            readiness::trouble(e)
        }
        _ => None,
    }
}

/// A site id from a URL; one that cannot be an id is a page that does not exist.
pub(crate) fn parse_site_id(id: &str) -> Result<crate::models::SiteId, PanelError> {
    crate::models::SiteId::parse(id).map_err(|_| PanelError::NotFound(format!("no site {id:?}")))
}

impl From<sqlx::Error> for PanelError {
    fn from(error: sqlx::Error) -> Self {
        PanelError::from(DataError::from(error))
    }
}

impl From<DataError> for PanelError {
    fn from(error: DataError) -> Self {
        match database_trouble(&error) {
            Some(trouble) => {
                // The page says what it means; the request log has the 503; the cause for
                // whoever turns on debug logging.
                tracing::debug!(error = %error, "a database call failed");
                PanelError::Database(trouble)
            }
            None => PanelError::Data(error),
        }
    }
}

impl From<RevertError> for PanelError {
    fn from(error: RevertError) -> Self {
        match &error {
            RevertError::Data(data) if let Some(trouble) = database_trouble(data) => {
                tracing::debug!(error = %error, "a database call failed");
                PanelError::Database(trouble)
            }
            _ => PanelError::Revert(error),
        }
    }
}

impl PanelError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            PanelError::Forbidden(_) => StatusCode::FORBIDDEN,
            PanelError::NotFound(_) | PanelError::Data(DataError::NotFound { .. }) => StatusCode::NOT_FOUND,
            PanelError::BadRequest(_)
            | PanelError::Data(DataError::Invalid(_) | DataError::Rejected { .. }) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            PanelError::Data(DataError::Conflict(_)) => StatusCode::CONFLICT,
            PanelError::Revert(RevertError::Data(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            PanelError::Revert(_) => StatusCode::CONFLICT,
            PanelError::IdentityUnavailable | PanelError::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
            PanelError::Data(_) | PanelError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message with its causes, as the person on the page should read it.
    pub(crate) fn message(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        text
    }
}

impl IntoResponse for PanelError {
    fn into_response(self) -> Response {
        let status = self.status();
        // The database's trouble is logged where it is settled (by the probe, once per change),
        // not once per page.
        if status.is_server_error() && !matches!(self, PanelError::Database(_)) {
            tracing::error!(error = %self.message(), "request failed");
        }
        let mut response = (status, super::html::error_page(status, &self.message())).into_response();
        if let PanelError::Database(trouble) = self {
            response.extensions_mut().insert(trouble);
        }
        response
    }
}
