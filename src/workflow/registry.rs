//! The definition registry (流程定义注册表): loading, checking, publishing and versions.

#[allow(unused_imports)]
use super::*;
use crate::store::WriteQuery;
// ---- registry ----------------------------------------------------------------------------

/// The loaded, published definitions (newest version of each key), reloadable at run time,
/// plus a cache of older versions that running instances still need.
pub struct Registry {
    pub dir: PathBuf,
    /// The hooks and subjects definitions are checked against and run with.
    catalog: Arc<Catalog>,
    current: RwLock<BTreeMap<String, Arc<Definition>>>,
    versions: RwLock<HashMap<(String, i64), Arc<Definition>>>,
}

/// Why a reload was refused.
#[derive(Debug)]
pub enum ReloadError {
    Invalid(Vec<Problem>),
    Failed(AppError),
}

impl From<AppError> for ReloadError {
    fn from(e: AppError) -> Self {
        ReloadError::Failed(e)
    }
}

impl From<sqlx::Error> for ReloadError {
    fn from(e: sqlx::Error) -> Self {
        ReloadError::Failed(e.into())
    }
}

fn content_hash(source: &str) -> String {
    hex::encode(Sha256::digest(source.as_bytes()))
}

/// Every role key a definition may name: built-in and custom roles.
pub async fn known_roles(db: &Db) -> Result<BTreeSet<String>> {
    let mut roles = def::builtin_roles();
    let rows: Vec<(String,)> = sqlx::query_as("SELECT key FROM roles")
        .fetch_all(&db.pool)
        .await?;
    roles.extend(rows.into_iter().map(|r| r.0));
    Ok(roles)
}

impl Registry {
    pub fn new(dir: PathBuf, catalog: Arc<Catalog>) -> Registry {
        Registry {
            dir,
            catalog,
            current: RwLock::default(),
            versions: RwLock::default(),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The current definitions, by key.
    pub fn list(&self) -> Vec<Arc<Definition>> {
        self.current
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn get(&self, key: &str) -> Option<Arc<Definition>> {
        self.current.read().ok().and_then(|m| m.get(key).cloned())
    }

    /// A definition at a given version: cached, or parsed again from the stored source.
    pub async fn version(&self, db: &Db, key: &str, version: i64) -> Result<Arc<Definition>> {
        if let Some(d) = self
            .versions
            .read()
            .ok()
            .and_then(|m| m.get(&(key.to_string(), version)).cloned())
        {
            return Ok(d);
        }
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT source FROM workflow_definitions WHERE key = $1 AND version = $2",
        )
        .bind(key)
        .bind(version)
        .fetch_optional(&db.pool)
        .await?;
        let (source,) = row.ok_or(AppError::NotFound)?;
        let roles = known_roles(db).await?;
        let mut d =
            def::parse(&format!("{key}.yaml"), &source, &roles, &self.catalog).map_err(|p| {
                anyhow::anyhow!("stored version {key} v{version} no longer parses: {}", p[0])
            })?;
        d.version = version;
        let d = Arc::new(d);
        if let Ok(mut m) = self.versions.write() {
            m.insert((key.to_string(), version), d.clone());
        }
        Ok(d)
    }

    /// Load every definition from the directory, record new contents as new versions and
    /// swap them in; on any problem nothing changes.
    pub async fn reload(
        &self,
        db: &Db,
        now: i64,
    ) -> std::result::Result<Vec<(String, i64)>, ReloadError> {
        let roles = known_roles(db).await?;
        let defs = if self.dir.exists() {
            def::load_dir(&self.dir, &roles, &self.catalog).map_err(ReloadError::Invalid)?
        } else {
            tracing::warn!(dir = %self.dir.display(), "workflows directory missing: no definitions loaded");
            vec![]
        };
        let mut loaded = Vec::new();
        let mut next = BTreeMap::new();
        for mut d in defs {
            d.version = record_version(db, &d.key, &d.source, now).await?;
            loaded.push((d.key.clone(), d.version));
            next.insert(d.key.clone(), Arc::new(d));
        }
        if let Ok(mut v) = self.versions.write() {
            for d in next.values() {
                v.insert((d.key.clone(), d.version), d.clone());
            }
        }
        if let Ok(mut c) = self.current.write() {
            *c = next;
        }
        Ok(loaded)
    }

    /// Validate `source` as the new content of `key`, write it to its file and reload.
    pub async fn publish(
        &self,
        db: &Db,
        key: &str,
        source: &str,
        now: i64,
    ) -> std::result::Result<i64, ReloadError> {
        let file = self.dir.join(format!("{key}.yaml"));
        let roles = known_roles(db).await?;
        def::parse(&file.display().to_string(), source, &roles, &self.catalog)
            .map_err(ReloadError::Invalid)?;
        let old = std::fs::read_to_string(&file).ok();
        std::fs::write(&file, source).map_err(|e| {
            ReloadError::Failed(anyhow::anyhow!("write {}: {e}", file.display()).into())
        })?;
        match self.reload(db, now).await {
            Ok(loaded) => Ok(loaded
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| *v)
                .unwrap_or(0)),
            Err(e) => {
                // Put the file back so the directory and the running set agree.
                match old {
                    Some(o) => {
                        let _ = std::fs::write(&file, o);
                    }
                    None => {
                        let _ = std::fs::remove_file(&file);
                    }
                }
                Err(e)
            }
        }
    }
}

async fn record_version(db: &Db, key: &str, source: &str, now: i64) -> Result<i64> {
    let hash = content_hash(source);
    // Several nodes starting at once record the same new content: the loser of the insert
    // race reads the winner's version (same content) or takes the next one.
    let mut attempt = 0;
    loop {
        attempt += 1;
        if let Some((v,)) = sqlx::query_as::<_, (i64,)>(
            "SELECT version FROM workflow_definitions WHERE key = $1 AND content_hash = $2",
        )
        .bind(key)
        .bind(&hash)
        .fetch_optional(&db.pool)
        .await?
        {
            return Ok(v);
        }
        let (max,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM workflow_definitions WHERE key = $1",
        )
        .bind(key)
        .fetch_one(&db.pool)
        .await?;
        let inserted = sqlx::query("INSERT INTO workflow_definitions (key, version, content_hash, source, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(key)
            .bind(max + 1)
            .bind(&hash)
            .bind(source)
            .bind(now)
            .write(db)
            .await;
        match inserted {
            Ok(_) => return Ok(max + 1),
            Err(e) if crate::store::is_unique_violation(&e) && attempt < 5 => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Stored versions of a flow, newest first: (version, created_at, source).
pub async fn versions(db: &Db, key: &str) -> Result<Vec<(i64, i64, String)>> {
    Ok(sqlx::query_as("SELECT version, created_at, source FROM workflow_definitions WHERE key = $1 ORDER BY version DESC")
        .bind(key)
        .fetch_all(&db.pool)
        .await?)
}
