//! The SQS queue an IAMAccount's IAM events arrive in (CloudTrail's records
//! of IAM calls, sent there by an EventBridge rule in us-east-1): long-poll
//! receives, and deletes of the messages once they were handled.

use std::{sync::Arc, time::Duration};

use aws_sdk_sqs::{
    error::{ProvideErrorMetadata, SdkError},
    operation::{
        delete_message_batch::DeleteMessageBatchError, receive_message::ReceiveMessageError,
    },
    types::DeleteMessageBatchRequestEntry,
};
use aws_smithy_types::timeout::TimeoutConfig;

use crate::aws::error_text::sort_service_error;
use crate::ops::metrics::Metrics;

/// IAM's management events reach EventBridge in this region only, and a
/// rule sends to queues of its own region.
const EVENTS_REGION: &str = "us-east-1";
/// SQS's longest long poll.
pub const LONG_POLL_LIMIT: Duration = Duration::from_secs(20);

/// Why the queue could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("SQS has no queue at this URL: {0}")]
    NoSuchQueue(String),
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// Throttling, 5xx, network: tried again after a pause.
    #[error("{0}")]
    Transient(String),
}

/// One message as SQS delivered it.
pub struct Received {
    pub receipt_handle: String,
    pub body: String,
}

/// An IAMAccount's SQS client (its credentials, us-east-1).
#[derive(Clone)]
pub struct EventQueue {
    client: aws_sdk_sqs::Client,
    metrics: Arc<Metrics>,
}

impl EventQueue {
    pub fn new(config: &aws_config::SdkConfig, metrics: Arc<Metrics>) -> Self {
        // A long poll waits up to LONG_POLL_LIMIT for its answer: the IAM
        // calls' attempt timeout would cut it, and SQS would then hand the
        // messages it found to a request nobody waits for (hidden until
        // their visibility timeout ends).
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(LONG_POLL_LIMIT + Duration::from_secs(10))
            .operation_timeout(3 * (LONG_POLL_LIMIT + Duration::from_secs(10)))
            .build();
        let sqs_config = aws_sdk_sqs::config::Builder::from(config)
            .region(aws_sdk_sqs::config::Region::new(EVENTS_REGION))
            .timeout_config(timeouts)
            .build();
        Self {
            client: aws_sdk_sqs::Client::from_conf(sqs_config),
            metrics,
        }
    }

    /// ReceiveMessage with long polling: up to ten messages, waiting up to
    /// `wait` for the first.
    pub async fn receive(&self, url: &str, wait: Duration) -> Result<Vec<Received>, QueueError> {
        let result = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait.min(LONG_POLL_LIMIT).as_secs() as i32)
            .send()
            .await;
        let outcome = match result {
            Ok(output) => Ok(output
                .messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|message| {
                    Some(Received {
                        receipt_handle: message.receipt_handle?,
                        body: message.body.unwrap_or_default(),
                    })
                })
                .collect()),
            Err(error) => Err(classify(error, |e| {
                matches!(e, ReceiveMessageError::QueueDoesNotExist(_))
            })),
        };
        self.count("ReceiveMessage", &outcome);
        outcome
    }

    /// DeleteMessageBatch: the messages handled (at most ten).
    pub async fn delete(&self, url: &str, receipt_handles: &[String]) -> Result<(), QueueError> {
        if receipt_handles.is_empty() {
            return Ok(());
        }
        let entries = receipt_handles
            .iter()
            .enumerate()
            .map(|(i, handle)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        let result = self
            .client
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await;
        let outcome = match result {
            Ok(_) => Ok(()),
            Err(error) => Err(classify(error, |e| {
                matches!(e, DeleteMessageBatchError::QueueDoesNotExist(_))
            })),
        };
        self.count("DeleteMessageBatch", &outcome);
        outcome
    }

    fn count<T>(&self, operation: &'static str, outcome: &Result<T, QueueError>) {
        let label = match outcome {
            Ok(_) => "ok",
            Err(QueueError::NoSuchQueue(_)) => "no_such_queue",
            Err(QueueError::AccessDenied(_)) => "access_denied",
            Err(QueueError::Transient(_)) => "error",
        };
        self.metrics.sqs_call(operation, label);
    }
}

fn classify<E>(
    error: SdkError<E, aws_smithy_runtime_api::http::Response>,
    no_such_queue: impl Fn(&E) -> bool,
) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    sort_service_error(
        error,
        |error, message| no_such_queue(error).then_some(QueueError::NoSuchQueue(message)),
        QueueError::AccessDenied,
        QueueError::Transient,
    )
}
