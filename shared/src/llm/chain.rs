//! The fallback chain: each provider in order until one answers. Each call is one
//! `llm.call` span whose fields carry the provider that answered, token usage, latency
//! and how many providers failed first; prompt and completion text are never recorded.

use futures::StreamExt;
use std::sync::Arc;
use std::time::Instant;
use tracing::{Instrument, field::Empty};

use super::{Completion, DeltaStream, LanguageModel, Request};
use crate::error::{Error, Result};

pub struct Chain {
    links: Vec<Arc<dyn LanguageModel>>,
}

impl Chain {
    /// `links` in order of preference; at least one.
    pub fn new(links: Vec<Arc<dyn LanguageModel>>) -> Result<Self> {
        if links.is_empty() {
            return Err(Error::internal("an LLM chain needs at least one provider"));
        }
        Ok(Chain { links })
    }

    fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "llm.call",
            provider = Empty,
            model = Empty,
            input_tokens = Empty,
            output_tokens = Empty,
            latency_ms = Empty,
            fallbacks = Empty,
            finish_reason = Empty,
            cost_usd = Empty,
            error_code = Empty,
        )
    }
}

fn failed(span: &tracing::Span, link: &dyn LanguageModel, err: &Error, more: bool) {
    span.record("error_code", err.code());
    // The code and message are safe (no prompt, no key); the text of the call is not logged.
    tracing::warn!(
        parent: span,
        provider = link.provider(),
        model = link.model(),
        code = err.code(),
        message = err.message(),
        "LLM provider failed{}",
        if more { "; falling back" } else { "" }
    );
}

#[async_trait::async_trait]
impl LanguageModel for Chain {
    fn provider(&self) -> &'static str {
        self.links[0].provider()
    }
    fn model(&self) -> &str {
        self.links[0].model()
    }

    async fn complete(&self, req: &Request) -> Result<Completion> {
        req.validate()?;
        let span = self.span();
        async {
            let mut last = None;
            for (i, link) in self.links.iter().enumerate() {
                match link.complete(req).await {
                    Ok(c) => {
                        let span = tracing::Span::current();
                        span.record("provider", c.provider);
                        span.record("model", c.model.as_str());
                        span.record("input_tokens", c.usage.input_tokens);
                        span.record("output_tokens", c.usage.output_tokens);
                        span.record("latency_ms", c.latency.as_millis() as u64);
                        span.record("fallbacks", i);
                        span.record("finish_reason", tracing::field::debug(&c.finish_reason));
                        if let Some(cost) = c.cost_usd {
                            span.record("cost_usd", cost);
                        }
                        return Ok(c);
                    }
                    Err(e) => {
                        failed(&tracing::Span::current(), link.as_ref(), &e, i + 1 < self.links.len());
                        last = Some(e);
                    }
                }
            }
            Err(last.expect("at least one provider"))
        }
        .instrument(span)
        .await
    }

    async fn stream(&self, req: &Request) -> Result<DeltaStream> {
        req.validate()?;
        let span = self.span();
        let started = Instant::now();
        let mut last = None;
        for (i, link) in self.links.iter().enumerate() {
            // A stream that fails before its first delta falls back like a failed call;
            // once text has reached the caller, switching provider would garble it.
            let opened = async {
                let mut s = link.stream(req).await?;
                match s.next().await {
                    Some(Err(e)) => Err(e),
                    first => Ok((first, s)),
                }
            }
            .instrument(span.clone())
            .await;
            match opened {
                Ok((first, rest)) => {
                    span.record("provider", link.provider());
                    span.record("model", link.model());
                    span.record("fallbacks", i);
                    let head = futures::stream::iter(first);
                    let rec = span.clone();
                    let price = link.price();
                    let out = head.chain(rest).inspect(move |item| match item {
                        Ok(d) => {
                            if let Some(u) = d.usage {
                                rec.record("input_tokens", u.input_tokens);
                                rec.record("output_tokens", u.output_tokens);
                                if let Some(p) = price {
                                    rec.record("cost_usd", p.cost(u));
                                }
                            }
                            if let Some(f) = &d.finish_reason {
                                rec.record("finish_reason", tracing::field::debug(f));
                                rec.record("latency_ms", started.elapsed().as_millis() as u64);
                            }
                        }
                        Err(e) => {
                            rec.record("error_code", e.code());
                        }
                    });
                    return Ok(out.boxed());
                }
                Err(e) => {
                    failed(&span, link.as_ref(), &e, i + 1 < self.links.len());
                    last = Some(e);
                }
            }
        }
        Err(last.expect("at least one provider"))
    }
}
