//! The embedded local stack and the `catalyst` developer commands.

pub mod dev_auth;
pub mod fetch;
pub mod invoke;
pub mod ledger;
pub mod manifest;
pub mod optimize;
pub mod package;
pub mod playground;
pub mod registry;
pub mod stack;
