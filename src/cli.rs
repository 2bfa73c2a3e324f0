//! The `workflows` and `audit` command groups: check, graph, simulate and bench flows, verify
//! the decision log. Each builds only what it needs.

use std::path::PathBuf;

use clap::Subcommand;

use crate::{
    config::Config,
    workflow::{audit, def, diagram},
};

#[derive(Subcommand)]
pub enum WorkflowsCommand {
    /// Validate every definition; exit 1 with `file:line: message` lines on error.
    Check { dir: Option<PathBuf> },
    /// Print the state machine of a workflow.
    Graph {
        key: String,
        #[arg(long, default_value = "mermaid")]
        format: String,
    },
    /// Dry run: walk a flow with sample subject data and a script of decisions.
    Simulate {
        key: String,
        /// Subject data as JSON, e.g. '{"dishonest": 0}'.
        #[arg(long, default_value = "{}")]
        subject: String,
        /// Decisions separated by `;`, e.g. 'return; approve; approve score=90'.
        #[arg(long, default_value = "approve")]
        script: String,
    },
    /// Benchmark persisted transitions per second against the configured database.
    Bench {
        #[arg(long, default_value_t = 2000)]
        count: usize,
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain and report the first broken link.
    Verify,
}

pub async fn workflows(config: Config, command: WorkflowsCommand) -> anyhow::Result<()> {
    let roles = def::builtin_roles();
    let catalog = crate::server::workflow_catalog();
    match command {
        WorkflowsCommand::Check { dir } => {
            let dir = dir.unwrap_or(config.workflows_dir);
            match def::load_dir(&dir, &roles, &catalog) {
                Ok(defs) => {
                    let mut warned = 0;
                    for d in &defs {
                        println!("{}: 正确（{}，{} 个状态）", d.file, d.title, d.states.len());
                        for w in def::warnings(d) {
                            println!("警告：{w}");
                            warned += 1;
                        }
                    }
                    println!("共 {} 个流程定义，全部通过检查", defs.len());
                    if warned > 0 {
                        println!("{warned} 条警告（不影响发布）");
                    }
                    Ok(())
                }
                Err(problems) => {
                    for p in &problems {
                        println!("{p}");
                    }
                    std::process::exit(1);
                }
            }
        }
        WorkflowsCommand::Graph { key, format } => {
            let defs = load(&config, &roles, &catalog)?;
            let d = find(&defs, &key)?;
            let out = match format.as_str() {
                "mermaid" => diagram::mermaid(d),
                "dot" => diagram::dot(d),
                "svg" => diagram::svg(d, None),
                other => anyhow::bail!("未知格式 {other}：应为 mermaid、dot 或 svg"),
            };
            print!("{out}");
            Ok(())
        }
        WorkflowsCommand::Bench { count, concurrency } => {
            let app = crate::app::App::build(
                crate::app::Base::open(config).await?,
                crate::server::workflow_catalog(),
            )
            .await?;
            let r = crate::workflow::bench::run(&app.engine, count, concurrency)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            println!(
                "数据库：{:?}；实例 {}；并发 {concurrency}\n发起：{:.0} 个/秒\n审批流转（持久化）：{:.0} 次/秒",
                app.db.backend, r.instances, r.starts_per_sec, r.transitions_per_sec
            );
            Ok(())
        }
        WorkflowsCommand::Simulate {
            key,
            subject,
            script,
        } => {
            let defs = load(&config, &roles, &catalog)?;
            let d = find(&defs, &key)?;
            let subject: serde_json::Value = serde_json::from_str(&subject)
                .map_err(|e| anyhow::anyhow!("--subject 不是合法的 JSON：{e}"))?;
            let lines: Vec<String> = script.split(';').map(|s| s.trim().to_string()).collect();
            print!(
                "{}",
                crate::workflow::simulate::render(&crate::workflow::simulate::run(
                    d, &subject, &lines
                ))
            );
            Ok(())
        }
    }
}

/// Every definition of the configured directory, or all their problems as one error.
fn load(
    config: &Config,
    roles: &std::collections::BTreeSet<String>,
    catalog: &crate::workflow::Catalog,
) -> anyhow::Result<Vec<def::Definition>> {
    def::load_dir(&config.workflows_dir, roles, catalog).map_err(|p| {
        let lines: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        anyhow::anyhow!("{}", lines.join("\n"))
    })
}

fn find<'d>(defs: &'d [def::Definition], key: &str) -> anyhow::Result<&'d def::Definition> {
    defs.iter()
        .find(|d| d.key == key)
        .ok_or_else(|| anyhow::anyhow!("没有流程 {key}"))
}

pub async fn audit(config: Config, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify => {
            let base = crate::app::Base::open(config).await?;
            match audit::verify(&base.db).await? {
                audit::Verdict::Intact { entries } => {
                    println!("审计日志完整：{entries} 条记录，哈希链无断点");
                    Ok(())
                }
                audit::Verdict::Broken { seq, reason } => {
                    println!("审计日志在第 {seq} 条记录处断开：{reason}");
                    std::process::exit(1);
                }
            }
        }
    }
}
