//! `catalyst-shared`: what two or more Catalyst functions need.
//!
//! A function is plain logic over the ports defined here (blob storage, document store,
//! queue, models, and the request principal); [`runtime`] serves it on Lambda, on Cloud
//! Run, or inside the local stack, from one binary.

pub mod auth;
#[cfg(feature = "aws-base")]
pub mod aws;
pub mod blob;
pub mod config;
pub mod error;
#[cfg(feature = "evaluation")]
pub mod evaluation;
pub mod event;
#[cfg(any(feature = "gcs", feature = "pubsub"))]
mod gcp;
#[cfg(feature = "llm")]
pub mod llm;
pub mod models;
#[cfg(feature = "llm")]
pub mod optimize;
#[cfg(feature = "otel")]
#[path = "telemetry_otel.rs"]
pub mod otel;
pub mod prompts;
pub mod queue;
pub mod runtime;
pub mod secrets;
#[cfg(feature = "local")]
mod sqlite;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use error::{Error, ErrorKind, JsonBody, Result};
pub use runtime::{Deps, Function, Triggers};
