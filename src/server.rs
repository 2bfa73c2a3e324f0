//! Start-up (启动): connect, migrate, make sure the built-in roles exist, load demo data on an
//! empty database when asked, then serve HTTP until SIGTERM/Ctrl-C (in-flight requests finish).

/// The name of the browser session cookie, for callers outside the web layer (benchmarks).
pub use crate::web::session::SESSION_COOKIE;
use std::{future::Future, net::SocketAddr};

use tokio::net::TcpListener;

use crate::{
    app::{App, Base},
    config::Config,
    web,
    workflow::Catalog,
};

/// Every workflow hook and subject, from the modules that own them: the engine's own hooks,
/// then each domain module's list. Adding a flow on a new record type is one line here.
pub fn workflow_catalog() -> Catalog {
    Catalog::engine()
        .subjects(crate::units::WORKFLOW_SUBJECTS)
        .subjects(crate::instruments::WORKFLOW_SUBJECTS)
        .subjects(crate::records::WORKFLOW_SUBJECTS)
        .subjects(crate::experts::WORKFLOW_SUBJECTS)
        .subjects(crate::money::hooks::WORKFLOW_SUBJECTS)
        .hooks(crate::money::hooks::WORKFLOW_HOOKS)
        .subjects(crate::evaluations::WORKFLOW_SUBJECTS)
        .hooks(crate::evaluations::WORKFLOW_HOOKS)
        .subjects(crate::reporting::WORKFLOW_SUBJECTS)
        .hooks(crate::reporting::WORKFLOW_HOOKS)
        .subjects(crate::changes::WORKFLOW_SUBJECTS)
        .hooks(crate::changes::WORKFLOW_HOOKS)
}

/// Everything `serve` needs: the services context, the page templates, and the indexer
/// that applies the search outbox in the background.
pub async fn prepare(config: Config) -> anyhow::Result<web::AppState> {
    web::metrics::init();
    let app = App::build(Base::open(config).await?, workflow_catalog()).await?;
    crate::search::spawn_indexer(app.search.clone(), app.db.clone());
    // Approved report batches go upstream when LABSHARE_UPSTREAM_URL is set.
    crate::reporting::push::spawn(app.clone());
    Ok(web::AppState::new(app))
}

/// Serve on `listener` until `shutdown` resolves.
pub async fn serve(
    state: web::AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = web::app(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
