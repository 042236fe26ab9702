//! Live updates: `GET /ui/events` is a small server-sent-events stream on
//! the same change broadcast as the API streams. Each committed change
//! (from the dashboard, the API, the CLI or another process) becomes one
//! `change` event naming the flags it touched; the page script then fetches
//! its own URL as a fragment (`Gantry-Fragment: 1`) and swaps the sections
//! marked `data-live`, except one the user is editing. The stream checks the
//! session on every event and says `signed-out` when it has ended.

use std::convert::Infallible;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use gantry_core::Store;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::session::Session;
use crate::state::{AppState, Change};

type DashboardStream = Sse<KeepAliveStream<ReceiverStream<Result<Event, Infallible>>>>;

fn change_event(p: &crate::state::Published) -> Event {
    let mut flags = Vec::new();
    let mut all = false;
    for c in &p.changes {
        match c {
            Change::Flag(f) => flags.push(f.key.clone()),
            Change::FlagDeleted(k) => flags.push(k.clone()),
            Change::Segment(_)
            | Change::SegmentDeleted(_)
            | Change::Maintenance { .. }
            | Change::Release(_)
            | Change::Rollout(_)
            | Change::Reset => all = true,
        }
    }
    let data = serde_json::json!({"revision": p.revision, "flags": flags, "all": all});
    Event::default().event("change").id(p.revision.to_string()).data(data.to_string())
}

/// The dashboard's change stream.
pub async fn get_events<St: Store>(State(app): State<AppState<St>>, s: Session) -> DashboardStream {
    let mut rx = app.changes.subscribe();
    let (tx, out) = mpsc::channel::<Result<Event, Infallible>>(16);
    let task_app = app.clone();
    tokio::spawn(async move {
        let app = task_app;
        app.metrics.stream_clients.fetch_add(1, Ordering::Relaxed);
        let _gauge = Gauge(&app.metrics.stream_clients);
        let hello = serde_json::json!({"revision": app.views().revision});
        if tx.send(Ok(Event::default().event("hello").data(hello.to_string()))).await.is_err() {
            return;
        }
        let shutdown = app.shutdown.clone();
        loop {
            tokio::select! {
                () = crate::state::stopped(shutdown.clone()) => return,
                () = tx.closed() => return,
                msg = rx.recv() => {
                    let event = match msg {
                        Ok(p) => change_event(&p),
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            let data = serde_json::json!({"revision": app.views().revision, "flags": [], "all": true});
                            Event::default().event("change").data(data.to_string())
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    };
                    if !app.dashboard.is_open(&s.id_hash, app.clock.now_millis()) {
                        let _ = tx.send(Ok(Event::default().event("signed-out").data("{}"))).await;
                        return;
                    }
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Sse::new(ReceiverStream::new(out)).keep_alive(KeepAlive::new().interval(app.config.heartbeat).text("heartbeat"))
}

struct Gauge<'a>(&'a std::sync::atomic::AtomicI64);

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
