//! Legacy HTTP+SSE (spec 2024-11-05): `GET /sse` opens a session whose first event,
//! `endpoint`, names where to POST; `POST /messages?sessionId=` answers 202 and the reply
//! arrives on the stream.

use std::sync::Arc;

use http::request::Parts;
use http::{HeaderValue, Response, StatusCode, header};
use rmcp::model::{JsonRpcMessage, ServerJsonRpcMessage};

use crate::auth::Identity;
use crate::body::{Body, SseStream};
use crate::checks::{self, X_FORWARDED_PREFIX};
use crate::edge::{Edge, Sessions, sse_response, status_only};
use crate::error::Error;
use crate::event_log::EventId;
use crate::message::{self, Posted};
use crate::outgoing::Outgoing;
use crate::session::{Session, SessionKind};
use crate::session_id::SessionId;
use crate::sse;

/// `GET /sse` (or `GET /mcp` without a session): a new legacy session and its stream.
pub(crate) async fn connect<S: Sessions>(
    edge: &Edge<S>,
    parts: &Parts,
    owner: Option<Identity>,
) -> Result<Response<Body>, Error> {
    if !checks::accepts(&parts.headers).sse {
        return Err(Error::NotAcceptable("Accept must allow text/event-stream"));
    }
    let (session, rx, endpoint_id, endpoint_seq) = match reconnect(edge, parts, owner.as_ref()).await {
        Some((session, rx, id)) => (session, rx, id, 0),
        None => {
            let session = edge.sessions.create(SessionKind::Legacy, owner)?;
            let (rx, priming) = session.open_standalone();
            tracing::info!(session = %session.id(), "legacy session opened");
            let id = priming.format(session.event_prefix());
            (session, rx, id, priming.seq)
        }
    };
    let endpoint = format!("{}{}?sessionId={}", prefix(edge, parts), edge.config.messages_path, session.id());
    let prelude =
        sse::Event { event: Some("endpoint"), id: Some(&endpoint_id), data: endpoint.as_bytes(), retry: None }.encode();
    let stream = SseStream::new(rx, edge.config.keepalive)
        .with_event_ids(session.event_prefix().clone())
        .with_gate(session.gate(), endpoint_seq)
        .with_prelude(prelude)
        .on_close(end_after_grace(edge, session));
    Ok(sse_response(stream))
}

/// An EventSource client that lost its stream reconnects to the same URL by itself,
/// sending the id of the last event it saw. When that id belongs to a legacy session that
/// is still live (or in its grace period), the client is put back into it, with what it
/// missed, instead of into a new, uninitialized session.
async fn reconnect<S: Sessions>(
    edge: &Edge<S>,
    parts: &Parts,
    owner: Option<&Identity>,
) -> Option<(Arc<Session>, tokio::sync::mpsc::Receiver<Outgoing>, String)> {
    let last = parts.headers.get(&checks::LAST_EVENT_ID)?.to_str().ok()?.trim();
    let (prefix, _) = EventId::parse(last).ok()?;
    let id: SessionId = prefix.parse().ok()?;
    let session = edge.live_session(id, SessionKind::Legacy, owner).await.ok()?;
    let (rx, _) = session.resume(last).ok()?;
    tracing::info!(session = %session.id(), "legacy client reconnected after event {last}");
    Some((session, rx, last.to_owned()))
}

/// When the stream closes, the session waits the grace period for the client to come
/// back, then ends.
fn end_after_grace<S: Sessions>(edge: &Edge<S>, session: Arc<Session>) -> crate::body::OnClose {
    let sessions = edge.sessions.clone();
    let tasks = edge.tasks.clone();
    let grace = edge.config.legacy_grace;
    let weak = session.standalone_handle();
    Box::new(move || {
        if let Some(weak) = &weak {
            session.close_standalone_if_current(weak);
        }
        if session.has_standalone() || session.is_ended() {
            return;
        }
        if grace.is_zero() {
            sessions.end(session.id());
            return;
        }
        tasks.spawn(async move {
            let ended = session.cancel_token();
            tokio::select! {
                () = tokio::time::sleep(grace) => {
                    if !session.has_standalone() {
                        tracing::debug!(session = %session.id(), "legacy stream gone past the grace period");
                        sessions.end(session.id());
                    }
                }
                () = ended.cancelled() => {}
            }
        });
    })
}

/// The external path prefix: `X-Forwarded-Prefix` when a proxy sets a sane one, else the
/// configured one.
fn prefix<'a, S>(edge: &'a Edge<S>, parts: &'a Parts) -> &'a str {
    let forwarded = parts
        .headers
        .get(&X_FORWARDED_PREFIX)
        .and_then(|v| v.to_str().ok())
        .map(|p| p.trim().trim_end_matches('/'))
        .filter(|p| p.starts_with('/') && !p.starts_with("//") && !p.contains(['?', '#', ' ']));
    forwarded.unwrap_or(edge.config.public_prefix.trim_end_matches('/'))
}

/// `POST /messages?sessionId=`: hands one message to the session; the answer goes on the
/// event stream.
pub(crate) async fn post<S: Sessions>(
    edge: &Edge<S>,
    parts: &Parts,
    body: &[u8],
    owner: Option<Identity>,
) -> Result<Response<Body>, Error> {
    let id = session_param(parts)?;
    let session = edge.live_session(id, SessionKind::Legacy, owner.as_ref()).await?;
    checks::require_json_content_type(&parts.headers)?;
    let message = match message::parse(body)? {
        Posted::Single(m) => m,
        Posted::Batch(_) => return Err(Error::InvalidRequest("batches are not accepted on the legacy transport")),
    };
    edge.sessions.observe(SessionKind::Legacy, message::method_label(&message));
    let refused = match &message {
        JsonRpcMessage::Request(r) => edge.admit(&r.request, owner.as_ref()).err().map(|e| (r.id.clone(), e)),
        _ => None,
    };
    match refused {
        // The POST is only ever 202 here: the refusal is the answer on the stream, as any
        // other answer would be.
        Some((id, refusal)) => {
            let error = ServerJsonRpcMessage::error(refusal.to_jsonrpc(), Some(id));
            session.deliver(error).await.map_err(|_| Error::SessionNotFound)?;
        }
        None => session.send(message).await.map_err(|_| Error::SessionNotFound)?,
    }
    let mut response = status_only(StatusCode::ACCEPTED);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    *response.body_mut() = Body::full("Accepted");
    Ok(response)
}

/// The session named by the `sessionId` query parameter. Missing, empty or not visible
/// ASCII is a bad request (400); any other id that is not a live legacy session is unknown
/// (404), whoever minted it: other servers use UUIDs, and a client that kept one must be
/// told to start over, as `/mcp` tells it.
fn session_param(parts: &Parts) -> Result<SessionId, Error> {
    let query = parts.uri.query().unwrap_or("");
    let value = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "sessionId")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
        .ok_or(Error::BadSessionParam("the sessionId query parameter is required"))?;
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::BadSessionParam("the sessionId query parameter must be visible ASCII"));
    }
    value.parse().map_err(|_| Error::SessionNotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(query: &str) -> Result<SessionId, Error> {
        let parts = http::Request::post(format!("/messages?{query}")).body(()).expect("request").into_parts().0;
        session_param(&parts)
    }

    #[test]
    fn an_id_we_never_minted_is_unknown_and_only_a_missing_or_garbled_one_is_bad() {
        let id = SessionId::random();
        assert_eq!(param(&format!("sessionId={id}")).ok(), Some(id));
        for unknown in ["sessionId=4f1c2a9e-8b7d-4c3e-9a2f-1e0d5c6b7a89", "sessionId=xyz", "a=1&sessionId=%21"] {
            assert!(matches!(param(unknown), Err(Error::SessionNotFound)), "{unknown}");
        }
        for bad in ["", "sessionId=", "other=1", "sessionId=a%20b", "sessionId=%C3%A9", "sessionId=a%0Ab"] {
            assert!(matches!(param(bad), Err(Error::BadSessionParam(_))), "{bad}");
        }
    }
}
