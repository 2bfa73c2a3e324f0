//! The `labshare` command line (命令行): serve, migrate, demo data, user accounts, reindex,
//! benchmarks, jobs, workflows and the audit log. Each command builds only what it needs.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use labshare::{
    app::{App, Base},
    auth,
    config::Config,
    server,
};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "labshare", version, about = "科研设施与仪器共享服务平台")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database if needed, then serve HTTP.
    Serve {
        /// Load the demo data set (with its demo accounts) when the database is empty.
        #[arg(long)]
        demo: bool,
    },
    /// Apply migrations and exit.
    Migrate,
    /// Load the Chinese demo data set (idempotent).
    DemoData,
    /// Rebuild the search index from the database (applies index-config/ changes).
    Reindex,
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// User accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Workflow definitions: check, graph.
    Workflows {
        #[command(subcommand)]
        command: labshare::cli::WorkflowsCommand,
    },
    /// The decision audit log.
    Audit {
        #[command(subcommand)]
        command: labshare::cli::AuditCommand,
    },
    /// Scheduled jobs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Run a job now (yearly-close, task-reminders, mail-outbox, daily-digest, index-check,
    /// report-reminders, booking-no-shows); a period already done is skipped.
    Run {
        name: String,
        /// The date to run it as of (YYYY-MM-DD, Asia/Shanghai); default: now.
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Generate N instruments, build the index, time a query mix against SQLite LIKE.
    Search {
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Start `serve --demo` on a fresh SQLite database and print each public page's req/s as a
    /// share of `/healthz` in the same run (wrk when installed).
    Http {
        #[arg(long, default_value_t = 8)]
        seconds: u64,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Also measure a node with the page cache off.
        #[arg(long)]
        uncached: bool,
        /// `wrk`, `builtin` or `auto`.
        #[arg(long, default_value = "auto")]
        tool: String,
    },
    /// N instruments' week availability: the two-query search against a naive
    /// per-instrument baseline, in a fresh SQLite database.
    Availability {
        #[arg(long, default_value_t = 1000)]
        n: usize,
        #[arg(long, default_value_t = 15)]
        runs: usize,
    },
    /// Statistics at scale: RECORDS service records (and a tenth as many instruments) in a
    /// fresh SQLite database; the statistics page and indicators API timed over HTTP.
    Statistics {
        #[arg(long, default_value_t = 1_000_000)]
        records: i64,
        #[arg(long, default_value_t = 15)]
        runs: usize,
    },
    /// Start N serve nodes on the configured database and run a mixed load against them.
    Load {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[arg(long, default_value_t = 200)]
        clients: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create an account with a role.
    Add {
        name: String,
        #[arg(long)]
        password: String,
        /// system_admin, platform_admin, unit_manager, expert or user.
        #[arg(long)]
        role: String,
        #[arg(long)]
        email: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_env("LABSHARE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    // `LABSHARE_LOG_FORMAT=json`: one JSON object per line (for a log collector).
    if std::env::var("LABSHARE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("错误：{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    match cli.command {
        Command::Workflows { command } => labshare::cli::workflows(config, command).await,
        Command::Audit { command } => labshare::cli::audit(config, command).await,
        Command::Serve { demo } => {
            let bind = config.bind;
            let state = server::prepare(config).await?;
            if demo && labshare::demo::is_empty(&state.db).await? {
                tracing::info!("empty database: loading the demo data set (--demo)");
                labshare::demo::load(&state.db, &state.clock).await?;
                labshare::demo::start_pending_reviews(&state.engine).await?;
                state.search.rebuild(&state.db, &|_, _| {}).await?;
            } else if !auth::has_users(&state.db).await? {
                tracing::warn!(
                    "the database has no accounts: create the first system admin with \
                     `labshare users add NAME --password PASSWORD --role system_admin` \
                     (or start on an empty database with `labshare serve --demo` for the demo data)"
                );
            }
            let _scheduler = labshare::jobs::start_scheduler(state.app.clone()).await?;
            let listener = tokio::net::TcpListener::bind(bind).await?;
            tracing::info!(address = %listener.local_addr()?, public_url = %state.config.public_url, "labshare is serving");
            server::serve(state, listener, server::shutdown_signal()).await
        }
        Command::Migrate => {
            Base::open(config).await?;
            println!("数据库迁移完成");
            Ok(())
        }
        Command::DemoData => {
            let state = App::build(Base::open(config).await?, server::workflow_catalog()).await?;
            let report = labshare::demo::load(&state.db, &state.clock).await?;
            let reviews = labshare::demo::start_pending_reviews(&state.engine).await?;
            if reviews > 0 {
                println!("已为 {reviews} 条待审核记录发起审批流程");
            }
            state.search.rebuild(&state.db, &|_, _| {}).await?;
            println!("{report}");
            Ok(())
        }
        Command::Jobs {
            command: JobsCommand::Run { name, as_of },
        } => {
            let state = App::build(Base::open(config).await?, server::workflow_catalog()).await?;
            let at = match as_of {
                Some(d) => labshare::jobs::as_of_date(d),
                None => state.clock.now(),
            };
            let period = labshare::jobs::period(&name, at)?;
            match labshare::jobs::run(&state, &name, at).await? {
                labshare::jobs::Outcome::Done(text) => {
                    println!("任务 {name}（周期 {period}）已执行：{text}")
                }
                labshare::jobs::Outcome::AlreadyDone => {
                    println!("任务 {name}（周期 {period}）此前已执行，本次未做任何改动")
                }
            }
            if name == "mail-outbox" || name == "yearly-close" || name == "daily-digest" {
                // Deliver what the run queued before the process exits.
                let d = labshare::mail::deliver_due(&state.db, &state.mailer, state.now(), 1000)
                    .await?;
                if d.sent + d.retried + d.failed > 0 {
                    println!(
                        "邮件：已发送 {}，待重试 {}，失败 {}",
                        d.sent, d.retried, d.failed
                    );
                }
            }
            Ok(())
        }
        Command::Bench {
            command:
                BenchCommand::Load {
                    nodes,
                    clients,
                    seconds,
                },
        } => {
            println!(
                "{}",
                labshare::loadtest::run(config, nodes, clients, seconds).await?
            );
            Ok(())
        }
        Command::Bench {
            command:
                BenchCommand::Http {
                    seconds,
                    connections,
                    runs,
                    uncached,
                    tool,
                },
        } => {
            let options = labshare::httpbench::Options {
                seconds,
                connections,
                runs,
                uncached,
                tool,
            };
            println!("{}", labshare::httpbench::run(config, options).await?);
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Availability { n, runs },
        } => {
            in_bench_dir(&config, "availability", |dir| async move {
                labshare::money::bookings::availability_bench::run(&dir, n, runs).await
            })
            .await
        }
        Command::Bench {
            command: BenchCommand::Statistics { records, runs },
        } => {
            let c = &config;
            in_bench_dir(c, "statistics", |dir| async move {
                labshare::statsbench::run(c, &dir, records, runs).await
            })
            .await
        }
        Command::Bench {
            command: BenchCommand::Search { n, runs },
        } => {
            let c = &config;
            in_bench_dir(c, "search", |dir| async move {
                labshare::search::bench::run(&dir, &labshare::app::index_config_dir(c), n, runs)
                    .await
            })
            .await
        }
        Command::Reindex => {
            let state = App::build(Base::open(config).await?, server::workflow_catalog()).await?;
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {pos}/{len} ({elapsed})",
                )?
                .progress_chars("=> "),
            );
            bar.set_message("重建索引");
            let n = state
                .search
                .rebuild(&state.db, &|done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                })
                .await?;
            bar.finish();
            println!("索引重建完成：{n} 条记录");
            Ok(())
        }
        Command::Users {
            command:
                UsersCommand::Add {
                    name,
                    password,
                    role,
                    email,
                },
        } => {
            if auth::builtin_role(&role).is_none() {
                anyhow::bail!(
                    "未知角色 {role}：应为 system_admin、platform_admin、unit_manager、expert 或 user"
                );
            }
            let state = Base::open(config).await?;
            let new = auth::NewUser {
                username: name.clone(),
                password,
                display_name: name.clone(),
                email,
                phone: None,
            };
            match auth::create_user(&state.db, new, &[role.as_str()], state.now()).await {
                Ok(id) => {
                    println!("已创建用户 {name}（id {id}，角色 {role}）");
                    Ok(())
                }
                Err(e) => {
                    let detail = e
                        .field_errors()
                        .map(|f| {
                            f.iter()
                                .map(|(k, v)| format!("{k}: {v}"))
                                .collect::<Vec<_>>()
                                .join("；")
                        })
                        .unwrap_or_default();
                    anyhow::bail!("{e}{}{detail}", if detail.is_empty() { "" } else { "：" })
                }
            }
        }
    }
}

/// Run a benchmark in a fresh directory under the data directory, remove the directory
/// whatever the outcome, and print the report.
async fn in_bench_dir<F, Fut, T>(config: &Config, name: &str, run: F) -> anyhow::Result<()>
where
    F: FnOnce(std::path::PathBuf) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
    T: std::fmt::Display,
{
    let dir = config
        .data_dir
        .join(format!("bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(dir.clone()).await;
    let _ = std::fs::remove_dir_all(&dir);
    println!("{}", result?);
    Ok(())
}
