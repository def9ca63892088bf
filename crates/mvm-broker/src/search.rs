//! `web_search` through the operator's provider (SearXNG's JSON API; the
//! contract is in the crate docs). The provider's answer is untrusted and
//! parsed here, in [`parse`].

use std::time::Duration;

use mvm_proto::broker::{
    DEFAULT_TIMEOUT_MS, ErrorCode, MAX_RESPONSE_BODY, Outcome, SearchHit, SearchRequest,
    SearchResponse,
};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use zeroize::Zeroizing;

use crate::fetch::chain;
use crate::{Broker, Record, Refusal, SearchProvider, SetupError, request};

/// A provider whose configuration was checked.
pub(crate) struct Provider {
    url: url::Url,
    pub(crate) key: Option<Zeroizing<Vec<u8>>>,
    /// What the key is called in records and redactions.
    pub(crate) key_name: String,
    authorization: Option<HeaderValue>,
    /// Built on first use and kept: its connections are reused.
    client: std::sync::Mutex<Option<reqwest::Client>>,
}

impl Provider {
    pub(crate) fn new(p: SearchProvider) -> Result<Provider, SetupError> {
        let bad = |why: String| SetupError::Search {
            url: mvm_ir::text::escape_control(&p.url).into_owned(),
            why,
        };
        let url = url::Url::parse(&p.url).map_err(|e| bad(format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad("expected an http:// or https:// URL".into()));
        }
        let authorization = match &p.key {
            Some(k) if !k.is_empty() => {
                let mut v = Zeroizing::new(b"Bearer ".to_vec());
                v.extend_from_slice(k);
                let mut v = HeaderValue::from_bytes(&v)
                    .map_err(|_| bad("its key holds a character a header cannot carry".into()))?;
                v.set_sensitive(true);
                Some(v)
            }
            _ => None,
        };
        Ok(Provider {
            url,
            key: p.key.filter(|k| !k.is_empty()),
            key_name: p
                .key_name
                .clone()
                .unwrap_or_else(|| crate::SEARCH_KEY_NAME.to_string()),
            authorization,
            client: Default::default(),
        })
    }

    fn client(&self, broker: &Broker) -> Result<reqwest::Client, Refusal> {
        let mut kept = self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = &*kept {
            return Ok(c.clone());
        }
        let c = reqwest::Client::builder()
            .use_preconfigured_tls(broker.tls.clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| {
                (
                    ErrorCode::Upstream,
                    format!("setting up the search client: {}", chain(&e)),
                )
            })?;
        *kept = Some(c.clone());
        Ok(c)
    }

    fn destination(&self) -> String {
        let host = self.url.host_str().unwrap_or("");
        let port = self.url.port_or_known_default().unwrap_or(0);
        format!("{host}:{port}")
    }
}

pub(crate) async fn run(
    broker: &Broker,
    req: SearchRequest,
    record: &mut Record,
) -> Result<Outcome, Refusal> {
    let Some(provider) = &broker.search else {
        return Err((
            ErrorCode::Unavailable,
            "web_search is not available: the operator has configured no search provider".into(),
        ));
    };
    record.destination = Some(provider.destination());
    record.method = Some("GET".into());
    let search = request::search(req)?;
    let mut url = provider.url.clone();
    url.query_pairs_mut()
        .append_pair("q", &search.query)
        .append_pair("format", "json");
    let client = provider.client(broker)?;
    let mut builder = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(auth) = &provider.authorization {
        builder = builder.header(AUTHORIZATION, auth.clone());
        // The provider's key is released into this request.
        record.secrets.push(provider.key_name.clone());
    }
    record.decision = "allowed";
    let dest = provider.destination();
    let timeout = Duration::from_millis(DEFAULT_TIMEOUT_MS);
    let asked = async {
        let upstream = |e: reqwest::Error| {
            (
                ErrorCode::Upstream,
                format!("the search provider {dest}: {}", chain(&e)),
            )
        };
        let mut response = builder.send().await.map_err(upstream)?;
        record.status = Some(response.status().as_u16());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(upstream)? {
            record.bytes_received += chunk.len() as u64;
            if body.len() + chunk.len() > MAX_RESPONSE_BODY {
                return Err((
                    ErrorCode::Upstream,
                    format!(
                        "the search provider {dest} answered more than {MAX_RESPONSE_BODY} bytes"
                    ),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        if !response.status().is_success() {
            return Err((
                ErrorCode::Upstream,
                format!("the search provider {dest} answered {}", response.status()),
            ));
        }
        Ok(body)
    };
    let body = match tokio::time::timeout(timeout, asked).await {
        Ok(r) => r?,
        Err(_) => {
            return Err((
                ErrorCode::Timeout,
                format!(
                    "the search provider {dest} did not answer within {} ms",
                    timeout.as_millis()
                ),
            ));
        }
    };
    let hits = parse(&body, search.max_results).map_err(|why| {
        (
            ErrorCode::Upstream,
            format!("the search provider {dest} did not answer with the documented JSON: {why}"),
        )
    })?;
    let f = &broker.secrets.to_tokens;
    let results: Vec<SearchHit> = hits
        .into_iter()
        .map(|h| SearchHit {
            title: f.replace_str(&h.title),
            url: f.replace_str(&h.url),
            snippet: f.replace_str(&h.snippet),
        })
        .collect();
    // Tokens can be longer than the values they replace (as for fetch).
    let size: usize = results
        .iter()
        .map(|h| h.title.len() + h.url.len() + h.snippet.len())
        .sum();
    if size > MAX_RESPONSE_BODY {
        return Err((
            ErrorCode::TooLarge,
            format!(
                "the results from the search provider {dest} are larger than {MAX_RESPONSE_BODY} bytes once secret values in them are replaced by tokens"
            ),
        ));
    }
    Ok(Outcome::Searched(SearchResponse { results }))
}

#[derive(serde::Deserialize)]
struct Answer {
    results: Vec<Hit>,
}

/// One result; fields other than these are ignored.
#[derive(serde::Deserialize)]
struct Hit {
    title: String,
    url: String,
    #[serde(default)]
    content: Option<String>,
}

/// The provider's JSON answer, cut to `max` hits.
fn parse(body: &[u8], max: usize) -> Result<Vec<SearchHit>, String> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(answer
        .results
        .into_iter()
        .take(max)
        .map(|h| SearchHit {
            title: h.title,
            url: h.url,
            snippet: h.content.unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_answer_is_parsed_strictly_enough() {
        let body = br#"{"query":"q","results":[
            {"title":"A","url":"https://a.example/","content":"about a","engine":"x","score":1.5},
            {"title":"B","url":"https://b.example/","content":null},
            {"title":"C","url":"https://c.example/"}
        ],"answers":[]}"#;
        let hits = parse(body, 2).unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].snippet, "about a");
        assert_eq!(hits[1].snippet, "");
        assert_eq!(parse(body, 10).unwrap().len(), 3);
        for bad in [
            &b"<html>"[..],
            br#"{"results":{}}"#,
            br#"{"results":[{"title":1,"url":"u"}]}"#,
            br#"{"results":[{"url":"u"}]}"#,
            br#"{}"#,
        ] {
            assert!(parse(bad, 5).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_provider_url_must_be_http_or_https() {
        let p = |url: &str| {
            Provider::new(SearchProvider {
                url: url.into(),
                key: None,
                key_name: None,
            })
        };
        assert!(p("https://search.local/search").is_ok());
        assert!(p("http://127.0.0.1:8888/search").is_ok());
        assert!(p("ftp://x/").is_err());
        assert!(p("search.local").is_err());
        let bad_key = Provider::new(SearchProvider {
            url: "https://s.local/".into(),
            key: Some(Zeroizing::new(b"a\nb".to_vec())),
            key_name: None,
        });
        assert!(bad_key.is_err());
    }
}
