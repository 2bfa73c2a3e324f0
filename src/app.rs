//! The services context (服务上下文) every domain operation runs in: the database, the clock,
//! the configuration, the workflow engine, the search index and the mailer with its mail
//! templates. It knows nothing of HTTP; `web::AppState` wraps it and adds the page templates.
//!
//! Commands that do not serve build only what they need: `Base::open` connects and migrates
//! (enough for `migrate`, `users add`, `audit verify`); `App::build` adds the engine, the index
//! and the mailer; only `serve` spawns the indexer and compiles page templates.

use std::{path::PathBuf, sync::Arc};

use crate::{clock::Clock, config::Config, mail::Mailer, search::SearchIndex, store::Db, workflow};

/// The database, clock and configuration: what every command needs.
#[derive(Clone)]
pub struct Base {
    pub db: Db,
    pub config: Arc<Config>,
    pub clock: Clock,
}

impl Base {
    /// Connect and migrate the database, make sure the built-in roles and a money policy
    /// version exist. Starts no background task.
    pub async fn open(config: Config) -> anyhow::Result<Base> {
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
        crate::money::current(&db).await?;
        crate::published::refresh(&db).await?;
        crate::published::install_default(&db);
        Ok(Base {
            db,
            config: Arc::new(config),
            clock,
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ts()
    }
}

/// Everything the domain may use.
#[derive(Clone)]
pub struct App {
    pub db: Db,
    pub config: Arc<Config>,
    pub clock: Clock,
    /// Approval flows: definitions, their hooks and subjects, start / act / withdraw / deadlines.
    pub engine: Arc<workflow::Engine>,
    pub search: Arc<SearchIndex>,
    pub mailer: Arc<Mailer>,
}

impl App {
    /// Load the workflow definitions (refusing invalid ones), open the search index (rebuilt
    /// when empty or built with another configuration) and the mailer. Spawns nothing.
    pub async fn build(base: Base, catalog: workflow::Catalog) -> anyhow::Result<App> {
        let Base { db, config, clock } = base;
        let mailer = Arc::new(Mailer::from_config(&config)?);
        let engine = Arc::new(workflow::Engine::new(
            workflow::Registry::new(config.workflows_dir.clone(), Arc::new(catalog)),
            db.clone(),
            clock.clone(),
        ));
        match engine.definitions.reload(&db, clock.now_ts()).await {
            Ok(loaded) => tracing::info!(count = loaded.len(), "workflow definitions loaded"),
            Err(workflow::ReloadError::Invalid(problems)) => {
                let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                anyhow::bail!("流程定义有误：\n{}", lines.join("\n"));
            }
            Err(workflow::ReloadError::Failed(e)) => {
                return Err(anyhow::anyhow!("loading workflows: {e}"));
            }
        }
        let search = Arc::new(SearchIndex::open(
            &config.data_dir.join("index"),
            &index_config_dir(&config),
        )?);
        search.rebuild_if_stale(&db).await?;
        Ok(App {
            db,
            config,
            clock,
            engine,
            search,
            mailer,
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ts()
    }
}

/// `LABSHARE_INDEX_CONFIG_DIR`, else `index-config/` beside the templates directory.
pub fn index_config_dir(config: &Config) -> PathBuf {
    std::env::var_os("LABSHARE_INDEX_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            config
                .templates_dir
                .parent()
                .map(|p| p.join("index-config"))
                .unwrap_or_else(|| "index-config".into())
        })
}
