//! Lambda mode: one handler for every payload the function is wired to, told apart by
//! shape. HTTP requests (API Gateway v1/v2, function URLs, ALB) go through the same axum
//! app as HTTP mode via `lambda_http`; S3, SQS (with partial batch failures), EventBridge
//! schedules and authorizer calls go to the function's triggers.

use aws_lambda_events::event::sqs::SqsBatchResponse;
use lambda_http::request::LambdaRequest;
use lambda_http::{RequestExt, Service};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

use super::{Deps, Function, Triggers};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::event::{self, LambdaShape};

type LambdaError = lambda_runtime::Error;

/// Run the Lambda Runtime API loop until the sandbox is shut down.
pub async fn serve(function: Function, deps: Deps) -> Result<()> {
    let handler = Arc::new(Handler { app: super::http::app(&function, &deps)?, triggers: function.triggers.clone() });
    tracing::info!(function = function.name, "serving the Lambda Runtime API");
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move {
            let result = handler.handle(ev).await;
            // The sandbox may freeze right after the response: export spans now.
            #[cfg(feature = "otel")]
            crate::otel::flush();
            result
        }
    }))
    .await
    .map_err(|e| Error::internal(format!("Lambda runtime failed: {e}")))
}

pub struct Handler {
    pub app: axum::Router,
    pub triggers: Arc<dyn Triggers>,
}

impl Handler {
    pub async fn handle(&self, ev: LambdaEvent<Value>) -> Result<Value, LambdaError> {
        let LambdaEvent { payload, context } = ev;
        let span =
            tracing::info_span!("invocation", request_id = %context.request_id, trace_id = tracing::field::Empty);
        let _enter = span.enter();
        match event::lambda_shape(&payload) {
            LambdaShape::Http => self.http(payload, context).await,
            LambdaShape::Authorizer => Ok(self.triggers.authorize(payload).await.map_err(fail)?),
            LambdaShape::S3 => {
                let objects = event::from_s3_event(payload).map_err(fail)?;
                // Do every object before failing, so one bad object does not block the others;
                // Lambda retries the whole event and the handlers are idempotent.
                let mut first_err = None;
                for obj in objects {
                    tracing::info!(bucket = %obj.bucket, key = %obj.key, "object created");
                    if let Err(e) = self.triggers.object_created(obj).await {
                        first_err.get_or_insert(e);
                    }
                }
                match first_err {
                    None => Ok(Value::Null),
                    Some(e) => Err(fail(e)),
                }
            }
            LambdaShape::Sqs => Ok(serde_json::to_value(self.sqs(payload).await.map_err(fail)?)?),
            LambdaShape::Scheduled => {
                let scheduled = event::from_eventbridge(payload).map_err(fail)?;
                tracing::info!(schedule = %scheduled.schedule, "schedule fired");
                self.triggers.scheduled(scheduled).await.map_err(fail)?;
                Ok(Value::Null)
            }
            LambdaShape::Unknown => {
                Err(fail(Error::bad_request("unrecognised Lambda payload").with_code("invalid_event")))
            }
        }
    }

    async fn http(&self, payload: Value, context: lambda_runtime::Context) -> Result<Value, LambdaError> {
        let request: LambdaRequest = serde_json::from_value(payload)?;
        // The gateway's authorizer context is the verified principal; only the gateway can set it.
        let app = self.app.clone().map_request(|mut req: http::Request<lambda_http::Body>| {
            let principal = match req.request_context_ref() {
                Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => {
                    ctx.authorizer.as_ref().and_then(|a| Principal::from_authorizer_context(&a.fields))
                }
                Some(lambda_http::request::RequestContext::ApiGatewayV1(ctx)) => {
                    Principal::from_authorizer_context(&ctx.authorizer.fields)
                }
                _ => None,
            };
            if let Some(p) = principal {
                req.extensions_mut().insert(p);
            }
            req
        });
        let mut adapter = lambda_http::Adapter::from(app);
        let response = adapter.call(LambdaEvent::new(request, context)).await?;
        Ok(serde_json::to_value(response)?)
    }

    /// Each message on its own; failures are reported per message so only they return to
    /// the queue (`ReportBatchItemFailures`). S3 notifications delivered through SQS are
    /// unwrapped into storage events.
    async fn sqs(&self, payload: Value) -> Result<SqsBatchResponse> {
        let messages = event::from_sqs_event(payload)?;
        let mut response = SqsBatchResponse::default();
        for msg in messages {
            let id = msg.id.clone();
            let result = match s3_notification(&msg.body) {
                Some(Ok(objects)) => {
                    let mut r = Ok(());
                    for obj in objects {
                        if let Err(e) = self.triggers.object_created(obj).await {
                            r = Err(e);
                        }
                    }
                    r
                }
                Some(Err(e)) => Err(e),
                None => self.triggers.queue_message(msg).await,
            };
            if let Err(e) = result {
                tracing::warn!(message_id = %id, code = e.code(), error = %e.message(), retryable = e.retryable(), "message failed");
                response.add_failure(id);
            }
        }
        Ok(response)
    }
}

/// `Some` when an SQS body is an S3 notification (including S3's `s3:TestEvent`, which yields none).
fn s3_notification(body: &[u8]) -> Option<Result<Vec<event::ObjectCreated>>> {
    if !body.starts_with(b"{") {
        return None;
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    if v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Some(Ok(Vec::new()));
    }
    (event::lambda_shape(&v) == LambdaShape::S3).then(|| event::from_s3_event(v))
}

fn fail(e: Error) -> LambdaError {
    tracing::warn!(code = e.code(), error = %e.message(), "invocation failed");
    format!("{}: {}", e.code(), e.public_message()).into()
}
