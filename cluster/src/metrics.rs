//! The Prometheus text endpoint (`--metrics HOST:PORT`, `GET /metrics`): what an operator looks
//! at during a failover. The text is rendered by the node's roles task from its own state (an
//! admin `metrics` call), so a reading never races the host.
//!
//! | metric | |
//! |---|---|
//! | `dc_lease_valid`, `dc_lease_remaining_seconds` | the local fence: 0 and 0 once fenced |
//! | `dc_coordinator`, `dc_coordinator_version` | whether this process leads, and as which version |
//! | `dc_dispatchers{changefeed,mode,state}` | the spans this node runs |
//! | `dc_maintainer_operators_in_flight{changefeed,kind}` | a hosted maintainer's operators |
//! | `dc_checkpoint_ts{changefeed,mode}`, `dc_checkpoint_lag_seconds{changefeed,mode}` | a hosted maintainer's checkpoint, and how far behind the synthetic upstream clock it is |
//! | `dc_persisted_checkpoint_ts{changefeed}`, `dc_coordinator_operators_in_flight{changefeed,kind}` | the coordinator's view |
//! | `dc_bootstrap_duration_seconds{changefeed,epoch}` | from a maintainer's admission to its bootstrap's end |
//! | `dc_heartbeat_interval_seconds{from}` | the last gap between two heartbeats from a node to a maintainer here |
//! | `dc_messages_total{event}`, `dc_frames_sent_total`, `dc_reconnects_total`, `dc_streams_refused_total` | the transport: messages queued, sent, received, dropped (by reason); frames written (a frame batches messages of one kind) |
//! | `dc_frames_dropped_total{reason}` | frames the host could not take (undecodable, not the coordinator) |

use std::fmt::Write;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::admin::{AdminCall, Call};

/// A metrics text under construction: each family's `# TYPE` line and samples together (the
/// format asks for one group per family), families in the order first sampled.
#[derive(Default)]
pub struct Text {
    families: Vec<(&'static str, String)>,
}

impl Text {
    /// One sample of family `name` (a gauge or, ending in `_total`, a counter).
    pub fn sample(&mut self, name: &'static str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let at = match self.families.iter().position(|(n, _)| *n == name) {
            Some(at) => at,
            None => {
                let kind = if name.ends_with("_total") { "counter" } else { "gauge" };
                self.families.push((name, format!("# TYPE {name} {kind}\n")));
                self.families.len() - 1
            }
        };
        let out = &mut self.families[at].1;
        out.push_str(name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(out, "{k}=\"{v}\"");
            }
            out.push('}');
        }
        let _ = writeln!(out, " {value}");
    }

    /// The text.
    pub fn finish(self) -> String {
        self.families.into_iter().map(|(_, text)| text).collect()
    }
}

/// Serves `GET /metrics` on `listener` until the node's roles are gone.
pub async fn serve(listener: TcpListener, calls: mpsc::Sender<Call>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else { continue };
        let calls = calls.clone();
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
                match tokio::time::timeout(std::time::Duration::from_secs(5), socket.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => request.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            let line = String::from_utf8_lossy(&request);
            let (status, body) = if line.starts_with("GET /metrics ") || line.starts_with("GET /metrics?") {
                let (tx, rx) = oneshot::channel();
                match calls.send((AdminCall::Metrics, tx)).await {
                    Ok(()) => match rx.await {
                        Ok(answer) => ("200 OK", answer.metrics.unwrap_or_default()),
                        Err(_) => ("503 Service Unavailable", "the node is stopping\n".to_owned()),
                    },
                    Err(_) => ("503 Service Unavailable", "the node is stopping\n".to_owned()),
                }
            } else {
                ("404 Not Found", "only GET /metrics is served here\n".to_owned())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_type_line_per_family_and_label_values_escaped() {
        let mut t = Text::default();
        t.sample("dc_x_total", &[], 1);
        t.sample("dc_x_total", &[("a", "q\"b")], 2);
        t.sample("dc_y", &[("a", "1"), ("b", "2")], 0.5);
        t.sample("dc_x_total", &[("a", "c")], 3);
        let text = t.finish();
        assert_eq!(
            text,
            "# TYPE dc_x_total counter\ndc_x_total 1\ndc_x_total{a=\"q\\\"b\"} 2\ndc_x_total{a=\"c\"} 3\n# TYPE dc_y gauge\ndc_y{a=\"1\",b=\"2\"} 0.5\n"
        );
    }
}
