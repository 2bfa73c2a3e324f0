//! Start-up (启动): connect, migrate, make sure the built-in roles exist, load demo data on an
//! empty database when asked, then serve HTTP until SIGTERM/Ctrl-C (in-flight requests finish).

use std::{future::Future, net::SocketAddr};

use tokio::net::TcpListener;

use crate::{
    app::{App, Base},
    config::Config,
    web,
};

/// Everything `serve` needs: the services context, the page templates, and the indexer
/// that applies the search outbox in the background.
pub async fn prepare(config: Config) -> anyhow::Result<web::AppState> {
    let app = App::build(Base::open(config).await?).await?;
    crate::search::spawn_indexer(app.search.clone(), app.db.clone());
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
