//! What a handler can fail with, and the page each failure shows.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};

use crate::{data::DataError, history::RevertError};

#[derive(Debug, thiserror::Error)]
pub enum PanelError {
    /// The signed-in role may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// tailscaled could not be asked who the caller is: nobody is let in meanwhile.
    #[error("tailscaled could not be asked who you are ({0}); nobody is let in until it answers")]
    IdentityUnavailable(String),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Revert(#[from] RevertError),
    #[error("{0}")]
    Internal(String),
}

impl From<sqlx::Error> for PanelError {
    fn from(error: sqlx::Error) -> Self {
        PanelError::Data(DataError::from(error))
    }
}

impl PanelError {
    pub fn status(&self) -> StatusCode {
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
            PanelError::IdentityUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            PanelError::Data(_) | PanelError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message with its causes, as the person on the page should read it.
    pub fn message(&self) -> String {
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
        if status.is_server_error() {
            tracing::error!(error = %self.message(), "request failed");
        }
        (status, super::html::error_page(status, &self.message())).into_response()
    }
}
