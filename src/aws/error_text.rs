//! An AWS SDK error as one readable sentence for a condition message: each
//! cause's own text, outermost first, without the SDK's debug dump of the
//! raw response (headers, body bytes) that `DisplayErrorContext` appends,
//! and short enough for a status (`metav1.Condition` allows 32768 bytes).

use std::error::Error;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Error codes AWS services answer a missing permission with. The SDKs do
/// not model them (they can come from any operation), so they arrive as
/// unhandled errors with only a code: matched by code, as the SDK's own
/// retry classifier does for throttling
/// (`aws_runtime::retries::classifiers::THROTTLING_ERRORS`).
pub const ACCESS_DENIED_CODES: &[&str] = &["AccessDenied", "AccessDeniedException"];

/// How the SQS and Secrets Manager clients sort a failed call: first the
/// operation's modeled errors their caller names (`modeled` says, by
/// variant; `None` for the others), then a refused permission
/// ([`ACCESS_DENIED_CODES`]), else a transient failure with its code, or
/// the causes of a failure to get an answer at all.
pub fn sort_service_error<E, T>(
    error: SdkError<E, Response>,
    modeled: impl Fn(&E, String) -> Option<T>,
    access_denied: impl Fn(String) -> T,
    transient: impl Fn(String) -> T,
) -> T
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    match error {
        SdkError::ServiceError(context) => {
            let error = context.err();
            let message = error.message().unwrap_or_default().to_string();
            if let Some(sorted) = modeled(error, message.clone()) {
                sorted
            } else if error
                .code()
                .is_some_and(|code| ACCESS_DENIED_CODES.contains(&code))
            {
                access_denied(message)
            } else {
                transient(format!(
                    "{}: {message}",
                    error.code().unwrap_or("unknown error code")
                ))
            }
        }
        other => transient(causes(&other)),
    }
}

/// At most this many bytes of causes: a message people read, and far under
/// the condition's bound.
const MAX_LEN: usize = 600;

/// "dispatch failure: other: ... : not authorized to perform ..." with a
/// cause that only repeats the one before it left out.
pub fn causes(error: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !parts.iter().any(|seen| seen.contains(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    let mut joined = parts.join(": ");
    if joined.len() > MAX_LEN {
        let mut cut = MAX_LEN;
        while !joined.is_char_boundary(cut) {
            cut -= 1;
        }
        joined.truncate(cut);
        joined.push('…');
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn Error + 'static))
        }
    }

    #[test]
    fn causes_read_as_one_sentence_without_repeats_or_debug_dumps() {
        let error = Layer(
            "dispatch failure",
            Some(Box::new(Layer(
                "service error",
                Some(Box::new(Layer(
                    "not authorized to perform: sts:AssumeRole",
                    Some(Box::new(Layer(
                        "not authorized to perform: sts:AssumeRole",
                        None,
                    ))),
                ))),
            ))),
        );
        assert_eq!(
            causes(&error),
            "dispatch failure: service error: not authorized to perform: sts:AssumeRole"
        );
        let long = Layer(Box::leak("é".repeat(1000).into_boxed_str()), None);
        let text = causes(&long);
        assert!(text.len() <= MAX_LEN + '…'.len_utf8() && text.ends_with('…'));
    }
}
