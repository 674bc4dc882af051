//! One log line per request, on stdout, beside the server's `listening on` line.
use pavex::{Response, middleware::Next, request::RequestHead};
use std::{future::IntoFuture, time::Instant};

/// Prints `<method> <path> <status> <duration>` once the response is ready, e.g.
/// `POST /cart/apple 200 3.1 ms`.
///
/// The path only: no query string (it may carry a cursor or worse), no header (the session
/// cookie is one), nothing of the session. Registered first in the blueprint, so it wraps every
/// other middleware: the status is the one the client gets, after `finalize_session` (whose
/// failure is a 500), and the duration includes the session's load and store. One exception:
/// pavexc builds the request's cookies (the session's input) before calling it, so a request
/// whose `Cookie` header does not parse is answered `400` without this line; the error
/// observer reports it on stderr. A real app would log through `tracing` (`pavex_tracing`).
#[pavex::wrap]
pub async fn log_request<C>(next: Next<C>, request: &RequestHead) -> Response
where
    C: IntoFuture<Output = Response>,
{
    let start = Instant::now();
    let response = next.await;
    println!(
        "{} {} {} {:.1} ms",
        request.method,
        request.target.path(),
        response.status().as_u16(),
        start.elapsed().as_secs_f64() * 1e3,
    );
    response
}
