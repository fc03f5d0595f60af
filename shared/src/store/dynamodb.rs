//! Amazon DynamoDB behind the document-store port: `dynamodb://{prefix}` keeps the
//! collection `interviews` in the table `{prefix}-interviews` (string keys `pk`/`sk`, TTL
//! on `expires_at`: what Terraform creates).
//!
//! Layout: `pk` is the collection name and `sk` the document key, so one Query answers a
//! prefix query exactly and in key order (`begins_with(sk, …)`), which is what the port
//! promises. The price is one partition key per table, i.e. DynamoDB's per-key ceiling
//! of about 1000 writes/s per collection: far above what interviews, keys and prompts
//! need. A collection that outgrows it would shard `pk` by a key prefix.
//!
//! Every precondition is a DynamoDB condition expression evaluated atomically on the
//! server; versions move with `SET version = version + 1`, so no write is lost to a race.
//! DynamoDB's TTL deletes expired items only eventually, so reads filter on
//! `expires_at` themselves, as the embedded store does.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tokio::sync::OnceCell;

use super::{Document, DocumentStore, Page, Precondition, validate_name};
use crate::aws::{sdk_config, sdk_error, url_error};
use crate::error::{Error, ErrorKind, Result};

const VAR: &str = "CATALYST_STORE_URL";
/// An item is at most 400 KB; the JSON is most of it.
const MAX_DOCUMENT_BYTES: usize = 390 * 1024;
const NOT_EXPIRED: &str = "(attribute_not_exists(expires_at) OR expires_at > :now)";

pub struct DynamoDocumentStore {
    prefix: String,
    client: OnceCell<Client>,
}

type Item = HashMap<String, AttributeValue>;

impl DynamoDocumentStore {
    /// `dynamodb://{prefix}`; no network until first use.
    pub fn from_url(url: &url::Url) -> Result<Self> {
        let prefix =
            url.host_str().filter(|p| !p.is_empty()).ok_or_else(|| url_error(VAR, url, "no table-name prefix"))?;
        if !url.path().trim_matches('/').is_empty() || url.query().is_some() {
            return Err(url_error(VAR, url, "expected dynamodb://{prefix}, the prefix of the table names"));
        }
        Ok(DynamoDocumentStore { prefix: prefix.to_owned(), client: OnceCell::new() })
    }

    /// Over an explicit SDK configuration (tests, DynamoDB-compatible servers).
    pub fn with_config(config: &aws_config::SdkConfig, prefix: &str) -> Self {
        DynamoDocumentStore { prefix: prefix.to_owned(), client: OnceCell::new_with(Some(Client::new(config))) }
    }

    async fn client(&self) -> &Client {
        self.client.get_or_init(|| async { Client::new(sdk_config().await) }).await
    }

    /// The table holding `collection`.
    pub fn table(&self, collection: &str) -> String {
        format!("{}-{collection}", self.prefix)
    }

    fn key(collection: &str, key: &str) -> Item {
        HashMap::from([("pk".to_owned(), s(collection)), ("sk".to_owned(), s(key))])
    }

    /// A failed condition expression is the port's `Conflict`; the rest as for reads.
    fn write_error(&self, what: &str, collection: &str, key: &str, condition: Precondition, err: Error) -> Error {
        if err.kind() == ErrorKind::Conflict {
            return Error::conflict(format!("document {collection}/{key}: precondition {condition:?} does not hold"))
                .with_code("precondition_failed");
        }
        self.error(what, collection, err)
    }

    fn error(&self, what: &str, collection: &str, err: Error) -> Error {
        if err.kind() == ErrorKind::NotFound {
            return Error::unavailable(format!(
                "{what}: DynamoDB table {} does not exist (Terraform creates one per manifest collection)",
                self.table(collection)
            ))
            .with_code("table_not_found");
        }
        err
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn now() -> AttributeValue {
    n(Utc::now().timestamp())
}

fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name)? {
        AttributeValue::N(v) => v.parse().ok(),
        _ => None,
    }
}

fn to_document(collection: &str, item: &Item) -> Result<Option<Document>> {
    let expires_at = number(item, "expires_at").and_then(|t| DateTime::<Utc>::from_timestamp(t, 0));
    if expires_at.is_some_and(|t| t <= Utc::now()) {
        return Ok(None);
    }
    let broken = || Error::internal(format!("DynamoDB item in {collection} is not a Catalyst document"));
    let key = match item.get("sk") {
        Some(AttributeValue::S(k)) => k.clone(),
        _ => return Err(broken()),
    };
    let value = match item.get("doc") {
        Some(AttributeValue::S(json)) => serde_json::from_str(json).map_err(|e| broken().with_source(e))?,
        _ => return Err(broken()),
    };
    let version = number(item, "version").filter(|v| *v > 0).ok_or_else(broken)? as u64;
    Ok(Some(Document { collection: collection.to_owned(), key, value, version, expires_at }))
}

#[async_trait]
impl DocumentStore for DynamoDocumentStore {
    fn location(&self) -> String {
        format!("dynamodb://{}", self.prefix)
    }

    async fn get(&self, collection: &str, key: &str) -> Result<Option<Document>> {
        validate_name("collection", collection)?;
        validate_name("key", key)?;
        match self.get_raw(collection, key).await? {
            Some(item) => to_document(collection, &item),
            None => Ok(None),
        }
    }

    async fn put(
        &self,
        collection: &str,
        key: &str,
        value: serde_json::Value,
        condition: Precondition,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<u64> {
        validate_name("collection", collection)?;
        validate_name("key", key)?;
        let json =
            serde_json::to_string(&value).map_err(|e| Error::internal("document does not serialize").with_source(e))?;
        if json.len() > MAX_DOCUMENT_BYTES {
            return Err(Error::new(
                ErrorKind::PayloadTooLarge,
                format!(
                    "document {collection}/{key} is {} bytes; DynamoDB items hold at most {MAX_DOCUMENT_BYTES}",
                    json.len()
                ),
            )
            .with_code("document_too_large"));
        }
        // DynamoDB refuses expression values that the expressions do not use, so each
        // branch adds exactly what it references.
        let mut values = HashMap::from([(":doc".to_owned(), s(&json)), (":one".to_owned(), n(1))]);
        let (version, condition_expr) = match condition {
            Precondition::None => {
                // Only over a live (or no) document: an expired one counts as absent and its
                // successor starts again at version 1, done below when this condition fails.
                values.insert(":zero".into(), n(0));
                values.insert(":now".into(), now());
                ("if_not_exists(version, :zero) + :one", Some(NOT_EXPIRED.to_owned()))
            }
            Precondition::Absent => {
                values.insert(":now".into(), now());
                (":one", Some(format!("attribute_not_exists(sk) OR NOT {NOT_EXPIRED}")))
            }
            Precondition::Version(v) => {
                values.insert(":now".into(), now());
                values.insert(":v".into(), n(v));
                ("version + :one", Some(format!("version = :v AND {NOT_EXPIRED}")))
            }
        };
        let update = match expires_at {
            Some(t) => {
                values.insert(":exp".into(), n(t.timestamp()));
                format!("SET doc = :doc, version = {version}, expires_at = :exp")
            }
            None => format!("SET doc = :doc, version = {version} REMOVE expires_at"),
        };
        let result = self
            .client()
            .await
            .update_item()
            .table_name(self.table(collection))
            .set_key(Some(Self::key(collection, key)))
            .update_expression(update)
            .set_condition_expression(condition_expr)
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                let err = sdk_error("dynamodb put", e);
                if condition == Precondition::None && err.kind() == ErrorKind::Conflict {
                    return self.put(collection, key, value, Precondition::Absent, expires_at).await;
                }
                return Err(self.write_error("dynamodb put", collection, key, condition, err));
            }
        };
        out.attributes
            .as_ref()
            .and_then(|a| number(a, "version"))
            .map(|v| v as u64)
            .ok_or_else(|| Error::internal("DynamoDB returned no version"))
    }

    async fn delete(&self, collection: &str, key: &str, condition: Precondition) -> Result<bool> {
        validate_name("collection", collection)?;
        validate_name("key", key)?;
        let mut values = HashMap::new();
        let condition_expr = match condition {
            Precondition::None => None,
            Precondition::Absent => {
                return Err(Error::bad_request("deleting on condition that the document is absent means nothing")
                    .with_code("invalid_precondition"));
            }
            Precondition::Version(v) => {
                values.insert(":now".to_owned(), now());
                values.insert(":v".to_owned(), n(v));
                Some(format!("version = :v AND {NOT_EXPIRED}"))
            }
        };
        let out = self
            .client()
            .await
            .delete_item()
            .table_name(self.table(collection))
            .set_key(Some(Self::key(collection, key)))
            .set_condition_expression(condition_expr)
            .set_expression_attribute_values(if values.is_empty() { None } else { Some(values) })
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| {
                self.write_error("dynamodb delete", collection, key, condition, sdk_error("dynamodb delete", e))
            })?;
        // Removing an expired document removes nothing the port could see.
        Ok(match out.attributes {
            Some(old) => to_document(collection, &old)?.is_some(),
            None => false,
        })
    }

    async fn query_prefix(&self, collection: &str, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page> {
        validate_name("collection", collection)?;
        let limit = limit.clamp(1, 1000);
        let mut documents = Vec::new();
        let mut start: Option<Item> = after.map(|a| Self::key(collection, a));
        let mut more = false;
        loop {
            let mut values = HashMap::from([(":pk".to_owned(), s(collection)), (":now".to_owned(), now())]);
            let key_condition = if prefix.is_empty() {
                "pk = :pk"
            } else {
                values.insert(":prefix".into(), s(prefix));
                "pk = :pk AND begins_with(sk, :prefix)"
            };
            let out = self
                .client()
                .await
                .query()
                .table_name(self.table(collection))
                .key_condition_expression(key_condition)
                .filter_expression(NOT_EXPIRED)
                .set_expression_attribute_values(Some(values))
                .set_exclusive_start_key(start.take())
                .limit((limit - documents.len()) as i32)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| self.error("dynamodb query", collection, sdk_error("dynamodb query", e)))?;
            for item in out.items() {
                if let Some(doc) = to_document(collection, item)? {
                    documents.push(doc);
                }
            }
            match out.last_evaluated_key {
                Some(last) if documents.len() < limit => start = Some(last),
                Some(_) => {
                    more = true;
                    break;
                }
                None => break,
            }
        }
        let next = if more { documents.last().map(|d| d.key.clone()) } else { None };
        Ok(Page { documents, next })
    }
}

impl DynamoDocumentStore {
    async fn get_raw(&self, collection: &str, key: &str) -> Result<Option<Item>> {
        let out = self
            .client()
            .await
            .get_item()
            .table_name(self.table(collection))
            .set_key(Some(Self::key(collection, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("dynamodb get", collection, sdk_error("dynamodb get", e)))?;
        Ok(out.item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::aws::Moto;
    use serde_json::json;
    use std::sync::Arc;

    async fn create_table(moto: &Moto, name: &str) {
        moto.create_table(name).await;
    }

    async fn store_with_tables(moto: &Moto, collections: &[&str]) -> DynamoDocumentStore {
        for c in collections {
            create_table(moto, &format!("catalyst-{c}")).await;
        }
        DynamoDocumentStore::with_config(&moto.config(), "catalyst")
    }

    #[tokio::test]
    async fn conformance_on_moto() {
        let moto = Moto::start();
        let store = store_with_tables(&moto, &["interviews", "api_keys", "sessions", "counters"]).await;
        crate::store::conformance::run(&store).await;
        crate::store::conformance::concurrent_increments(Arc::new(store)).await;
    }

    #[tokio::test]
    async fn throttling_is_retried_with_backoff() {
        let moto = Moto::start();
        create_table(&moto, "catalyst-interviews").await;
        let proxy = crate::testkit::FlakyProxy::start(
            moto.addr(),
            2,
            400,
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}"#,
        );
        let config = crate::aws::static_config(&proxy.url(), "us-east-1", "test", "test");
        let store = DynamoDocumentStore::with_config(&config, "catalyst");
        assert_eq!(store.put("interviews", "i1", json!({}), Precondition::Absent, None).await.unwrap(), 1);
        assert_eq!(proxy.failed(), 2);
    }

    #[tokio::test]
    async fn missing_table_is_a_clear_error() {
        let moto = Moto::start();
        let store = DynamoDocumentStore::with_config(&moto.config(), "catalyst");
        let err = store.get("interviews", "x").await.unwrap_err();
        assert_eq!(err.code(), "table_not_found", "{err}");
        assert!(err.message().contains("catalyst-interviews"), "{err}");
    }

    #[tokio::test]
    async fn pages_across_many_documents_and_expired_ones_are_skipped() {
        let moto = Moto::start();
        let store = store_with_tables(&moto, &["turns"]).await;
        let past = Utc::now() - chrono::Duration::seconds(10);
        for i in 0..25 {
            let expires = (i % 5 == 0).then_some(past);
            store.put("turns", &format!("iv1:{i:03}"), json!({"i": i}), Precondition::None, expires).await.unwrap();
        }
        store.put("turns", "iv2:000", json!({}), Precondition::None, None).await.unwrap();
        let mut keys = Vec::new();
        let mut after = None;
        loop {
            let page = store.query_prefix("turns", "iv1:", after.as_deref(), 4).await.unwrap();
            assert!(page.documents.len() <= 4);
            keys.extend(page.documents.iter().map(|d| d.key.clone()));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let expected: Vec<String> = (0..25).filter(|i| i % 5 != 0).map(|i| format!("iv1:{i:03}")).collect();
        assert_eq!(keys, expected);
        // Odd characters in keys are just characters.
        for key in ["a/b", "ü:ß", "with space", "%_*"] {
            store.put("turns", key, json!({"k": key}), Precondition::Absent, None).await.unwrap();
            assert_eq!(store.get("turns", key).await.unwrap().unwrap().value["k"], key);
        }
    }

    #[tokio::test]
    async fn oversized_documents_are_refused_before_sending() {
        let moto = Moto::start();
        let store = store_with_tables(&moto, &["interviews"]).await;
        let big = json!({"text": "x".repeat(500 * 1024)});
        let err = store.put("interviews", "big", big, Precondition::None, None).await.unwrap_err();
        assert_eq!(err.code(), "document_too_large");
    }

    #[test]
    fn urls_are_checked() {
        let store = DynamoDocumentStore::from_url(&"dynamodb://catalyst-prod".parse().unwrap()).unwrap();
        assert_eq!(store.table("api_keys"), "catalyst-prod-api_keys");
        for bad in ["dynamodb:///x", "dynamodb://p/t", "dynamodb://p?x=1"] {
            let err = DynamoDocumentStore::from_url(&bad.parse().unwrap()).err().unwrap_or_else(|| panic!("{bad}"));
            assert!(err.message().contains("CATALYST_STORE_URL"), "{err}");
        }
    }
}
