//! An AWS SDK error as one readable sentence for a condition message: each
//! cause's own text, outermost first, without the SDK's debug dump of the
//! raw response (headers, body bytes) that `DisplayErrorContext` appends,
//! and short enough for a status (`metav1.Condition` allows 32768 bytes).

use std::error::Error;

/// Error codes AWS services answer a missing permission with. The SDKs do
/// not model them (they can come from any operation), so they arrive as
/// unhandled errors with only a code: matched by code, as the SDK's own
/// retry classifier does for throttling
/// (`aws_runtime::retries::classifiers::THROTTLING_ERRORS`).
pub const ACCESS_DENIED_CODES: &[&str] = &["AccessDenied", "AccessDeniedException"];

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
