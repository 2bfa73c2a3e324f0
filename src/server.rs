//! Start-up (启动): connect, migrate, make sure the built-in roles exist, load demo data on an
//! empty database when asked, then serve HTTP until SIGTERM/Ctrl-C (in-flight requests finish).

use std::{future::Future, net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;

use crate::{clock::Clock, config::Config, store::Db, web};

/// Connect and migrate the database, and build the shared application state.
pub async fn prepare(config: Config) -> anyhow::Result<web::AppState> {
    if !config.is_postgres() {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    let clock = match config.now {
        Some(at) => {
            tracing::warn!(%at, "LABSHARE_NOW is set: the platform clock starts from it (tests and demos only)");
            Clock::starting_at(at)
        }
        None => Clock::system(),
    };
    let db = Db::connect(&config.database_url).await?;
    db.migrate().await?;
    crate::auth::sync_builtin_roles(&db, clock.now_ts()).await?;
    // Make sure a money policy version exists (the default one on a new database).
    crate::money::current(&db).await?;
    let templates = Arc::new(web::page::template_env(&config.templates_dir));
    let mailer = Arc::new(crate::mail::Mailer::from_config(&config)?);
    let workflows = Arc::new(crate::workflow::Registry::new(config.workflows_dir.clone()));
    match workflows.reload(&db, clock.now_ts()).await {
        Ok(loaded) => tracing::info!(count = loaded.len(), "workflow definitions loaded"),
        Err(crate::workflow::ReloadError::Invalid(problems)) => {
            let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            anyhow::bail!("流程定义有误：\n{}", lines.join("\n"));
        }
        Err(crate::workflow::ReloadError::Failed(e)) => {
            return Err(anyhow::anyhow!("loading workflows: {e}"));
        }
    }
    let search = Arc::new(crate::search::SearchIndex::open(
        &config.data_dir.join("index"),
        &index_config_dir(&config),
    )?);
    search.rebuild_if_stale(&db).await?;
    crate::search::spawn_indexer(search.clone(), db.clone());
    Ok(web::AppState {
        db,
        config: Arc::new(config),
        clock,
        templates,
        mailer,
        workflows,
        search,
    })
}

/// `LABSHARE_INDEX_CONFIG_DIR`, else `index-config/` beside the templates directory.
pub fn index_config_dir(config: &Config) -> std::path::PathBuf {
    std::env::var_os("LABSHARE_INDEX_CONFIG_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            config
                .templates_dir
                .parent()
                .map(|p| p.join("index-config"))
                .unwrap_or_else(|| "index-config".into())
        })
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
