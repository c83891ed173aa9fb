//! Shutdown that loses no request behind a load balancer.
//!
//! Salvo's graceful stop leaves its accept loop but keeps the listening socket open until
//! the last connection is done, so connections made while draining complete their TCP
//! handshake and are then reset at exit. [`ClosableAcceptor`] closes the socket itself
//! when asked: from then on the kernel refuses new connections at once, which a client or
//! load balancer can retry elsewhere safely (nothing was sent).
//!
//! The sequence (see `Application::run_until`): readiness turns 503 and responses carry
//! `Connection: close` → `server.shutdown_drain_delay_secs` of normal serving while load
//! balancers notice → the listener closes → in-flight requests get
//! `server.shutdown_grace_secs` → exit.

use std::io::Result as IoResult;
use std::time::Duration;

use salvo::conn::tcp::TcpAcceptor;
use salvo::conn::{Accepted, Acceptor, Holding};
use salvo::fuse::ArcFusePolicy;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// After a close request, connections already queued by the kernel are still accepted and
/// served (closing would reset them) until the queue has been empty this long...
const QUEUE_QUIET: Duration = Duration::from_millis(5);
/// ...but for no longer than this, so a steady stream of new connections cannot keep the
/// listener open.
const QUEUE_DRAIN_MAX: Duration = Duration::from_millis(250);
/// How long `ListenerCloser::close` waits for the acceptor to confirm.
const CLOSE_CONFIRM_MAX: Duration = Duration::from_secs(1);

/// A TCP acceptor whose listening socket can be closed while the server keeps serving the
/// connections it already has.
pub struct ClosableAcceptor {
    inner: Option<TcpAcceptor>,
    holdings: Vec<Holding>,
    close: watch::Receiver<bool>,
    confirm: Option<oneshot::Sender<()>>,
    /// Set at the close request: the end of the window for already-queued connections.
    drain_until: Option<Instant>,
}

/// Closes the listening socket of its [`ClosableAcceptor`].
pub struct ListenerCloser {
    close: watch::Sender<bool>,
    confirmed: oneshot::Receiver<()>,
}

pub fn closable(acceptor: TcpAcceptor) -> (ClosableAcceptor, ListenerCloser) {
    let (close_tx, close_rx) = watch::channel(false);
    let (confirm_tx, confirm_rx) = oneshot::channel();
    (
        ClosableAcceptor {
            holdings: acceptor.holdings().to_vec(),
            inner: Some(acceptor),
            close: close_rx,
            confirm: Some(confirm_tx),
            drain_until: None,
        },
        ListenerCloser {
            close: close_tx,
            confirmed: confirm_rx,
        },
    )
}

impl ListenerCloser {
    /// Asks the acceptor to close its socket and waits (briefly) until it has. The
    /// acceptor only acts while the server is polling it, i.e. before its stop command.
    pub async fn close(self) {
        if self.close.send(true).is_ok() {
            let _ = tokio::time::timeout(CLOSE_CONFIRM_MAX, self.confirmed).await;
        }
    }
}

impl ClosableAcceptor {
    fn shut(&mut self) {
        // Dropping the acceptor closes the listening socket.
        self.inner = None;
        if let Some(confirm) = self.confirm.take() {
            let _ = confirm.send(());
        }
        tracing::info!("listener closed: new connections are refused");
    }
}

impl Acceptor for ClosableAcceptor {
    type Coupler = <TcpAcceptor as Acceptor>::Coupler;
    type Stream = <TcpAcceptor as Acceptor>::Stream;

    fn holdings(&self) -> &[Holding] {
        &self.holdings
    }

    async fn accept(
        &mut self,
        fuse_policy: Option<ArcFusePolicy>,
    ) -> IoResult<Accepted<Self::Coupler, Self::Stream>> {
        let Some(inner) = self.inner.as_mut() else {
            // Closed: the server's accept loop waits here until its stop command arrives.
            return std::future::pending().await;
        };
        if !*self.close.borrow() {
            tokio::select! {
                accepted = inner.accept(fuse_policy.clone()) => return accepted,
                // A dropped sender counts as a close request too.
                _ = self.close.wait_for(|closing| *closing) => {}
            }
        }
        let until = *self
            .drain_until
            .get_or_insert_with(|| Instant::now() + QUEUE_DRAIN_MAX);
        let quiet = QUEUE_QUIET.min(until.saturating_duration_since(Instant::now()));
        if let Ok(accepted) = tokio::time::timeout(quiet, inner.accept(fuse_policy)).await {
            return accepted;
        }
        self.shut();
        std::future::pending().await
    }
}
