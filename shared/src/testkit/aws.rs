//! AWS protocol servers: moto (S3, SQS, DynamoDB, S3 -> SQS notifications) and s3s-fs
//! (S3 that checks SigV4 signatures).

use std::net::SocketAddr;
use std::process::Command;

use super::{ServerProcess, free_port, tool};

/// `moto_server` on 127.0.0.1: one in-memory account per process. It accepts any
/// credentials, so signature checks are s3s-fs's job.
pub struct Moto {
    server: ServerProcess,
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        // moto's own server, with DynamoDB requests made atomic as the real service's are
        // (see the script).
        let launcher = concat!(env!("CARGO_MANIFEST_DIR"), "/src/testkit/moto_server.py");
        let mut cmd = Command::new(tool("venv/bin/python"));
        cmd.args([launcher, "-H", "127.0.0.1", "-p", &port.to_string()]);
        Moto { server: ServerProcess::start(cmd, port, None) }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    pub fn config(&self) -> aws_config::SdkConfig {
        crate::aws::static_config(&self.url(), "us-east-1", "testing", "testing")
    }

    #[cfg(feature = "s3")]
    pub async fn create_bucket(&self, name: &str) {
        s3_client(&self.config()).create_bucket().bucket(name).send().await.expect("create bucket on moto");
    }

    /// A table as Terraform creates it for a collection (terraform/aws/tables.tf):
    /// string keys `pk` (hash) and `sk` (range), on demand.
    #[cfg(feature = "dynamodb")]
    pub async fn create_table(&self, name: &str) {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        let attr = |n: &str| {
            AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build().unwrap()
        };
        let key = |n: &str, t| KeySchemaElement::builder().attribute_name(n).key_type(t).build().unwrap();
        aws_sdk_dynamodb::Client::new(&self.config())
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk"))
            .attribute_definitions(attr("sk"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .send()
            .await
            .expect("create table on moto");
    }
}

#[cfg(feature = "s3")]
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build())
}

/// `s3s-fs` (crates.io, 0.14.1) serving a temporary directory, with one access key.
pub struct S3sFs {
    server: ServerProcess,
}

impl S3sFs {
    pub const ACCESS_KEY: &'static str = "catalyst-test-access";
    pub const SECRET_KEY: &'static str = "catalyst-test-secret-key";

    pub fn start() -> S3sFs {
        let dir = tempfile::tempdir().expect("temp dir for s3s-fs");
        let port = free_port();
        let mut cmd = Command::new(tool("bin/s3s-fs"));
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", Self::ACCESS_KEY, "--secret-key", Self::SECRET_KEY])
            .arg(dir.path());
        S3sFs { server: ServerProcess::start(cmd, port, Some(dir)) }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn config(&self) -> aws_config::SdkConfig {
        crate::aws::static_config(&self.url(), "us-east-1", Self::ACCESS_KEY, Self::SECRET_KEY)
    }

    #[cfg(feature = "s3")]
    pub async fn create_bucket(&self, name: &str) {
        s3_client(&self.config()).create_bucket().bucket(name).send().await.expect("create bucket on s3s-fs");
    }
}
