//! Deferred writes (PostgreSQL write transactions). A write whose result the transaction does
//! not need at once — an event row, the audit entry, a compare-and-swap whose failure only
//! has to abort the transaction — is held back (`Conn::defer`) and sent together with the
//! writes deferred after it, as one statement of data-modifying CTEs:
//!
//! ```sql
//! WITH d0 AS (UPDATE … RETURNING 1), d1 AS (INSERT … RETURNING 1)
//! SELECT (SELECT COUNT(*) FROM d0), (SELECT COUNT(*) FROM d1)
//! ```
//!
//! The held writes go out before the transaction's next statement of any other kind and
//! before its commit, so every read still sees every earlier write. What the batch cannot do
//! is let one of its writes see another's effect (all CTEs run on one snapshot) or change a row
//! twice, so a write that touches a table an earlier held write updated, or updates a table
//! an earlier held write touched, sends the held ones first. Inserts into one table share a batch.
//!
//! Why by hand: sqlx sends one statement per round trip and has no pipelining; on
//! PostgreSQL each round trip is a wake-up of the server's backend and of ours, which the
//! engine benchmark showed to be most of a decision's cost (`docs/benchmarks.md`).

use std::{borrow::Cow, fmt};

use sqlx::{
    Executor, Row,
    error::{DatabaseError, ErrorKind},
};
use sqlx_core::any::AnyArguments;

/// The table a deferred write changes, and which of its rows. The write's SQL must stay
/// within what it declares: the batch is only as safe as these declarations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// New rows only: inserts into the same table can share a batch.
    Insert(&'static str),
    /// Any existing rows (UPDATE or DELETE), read or changed.
    Update(&'static str),
    /// The one row with this `id`, and no other row of the table.
    Row(&'static str, i64),
    /// Any existing rows but the one with this `id`, which it neither reads nor changes.
    AllBut(&'static str, i64),
}

impl Touch {
    fn table(self) -> &'static str {
        match self {
            Touch::Insert(t) | Touch::Update(t) | Touch::Row(t, _) | Touch::AllBut(t, _) => t,
        }
    }

    /// Whether a write touching `self` must wait for a held write touching `held`: both in
    /// one table, unless both only insert or they keep to different rows.
    fn clashes_with(self, held: Touch) -> bool {
        if self.table() != held.table() {
            return false;
        }
        match (self, held) {
            (Touch::Insert(_), Touch::Insert(_)) => false,
            (Touch::Row(_, a), Touch::Row(_, b)) => a == b,
            (Touch::Row(_, a), Touch::AllBut(_, b)) | (Touch::AllBut(_, b), Touch::Row(_, a)) => {
                a != b
            }
            _ => true,
        }
    }
}

/// How many rows a deferred write must change; another number aborts the transaction with
/// [`Unexpected`] (a compare-and-swap that lost its race).
#[derive(Clone, Copy, Debug)]
pub struct Expect {
    pub rows: u64,
    /// The error code the caller's conflict carries (e.g. `task_closed`).
    pub code: &'static str,
    /// Its message, in Chinese, for the user.
    pub message: &'static str,
}

impl Expect {
    pub(super) fn check(self, rows: u64) -> Result<(), sqlx::Error> {
        if rows == self.rows {
            Ok(())
        } else {
            Err(sqlx::Error::Database(Box::new(Unexpected {
                expect: self,
                rows,
            })))
        }
    }
}

/// A deferred write changed another number of rows than its [`Expect`] (see
/// `crate::error`, which turns it into the caller's 409 conflict).
#[derive(Debug)]
pub struct Unexpected {
    pub expect: Expect,
    pub rows: u64,
}

impl fmt::Display for Unexpected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}: {} rows changed, {} expected)",
            self.expect.message, self.expect.code, self.rows, self.expect.rows
        )
    }
}

impl std::error::Error for Unexpected {}

impl DatabaseError for Unexpected {
    fn message(&self) -> &str {
        self.expect.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.expect.code))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// Refuse what cannot be deferred: one INSERT, UPDATE or DELETE, without `RETURNING` (its
/// rows would be lost), without `WITH` (a CTE cannot hold another) and without `;`.
pub(super) fn check_shape(sql: &str) -> Result<(), sqlx::Error> {
    let head = sql.trim_start().to_ascii_uppercase();
    let kind_ok = ["INSERT ", "UPDATE ", "DELETE "]
        .iter()
        .any(|k| head.starts_with(k));
    let words: Vec<&str> = head
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .collect();
    if !kind_ok || words.contains(&"RETURNING") || sql.trim_end().contains(';') {
        return Err(sqlx::Error::InvalidArgument(format!(
            "only a single INSERT, UPDATE or DELETE without RETURNING can be deferred: {sql}"
        )));
    }
    Ok(())
}

struct Write {
    sql: String,
    args: AnyArguments,
    touches: Vec<Touch>,
    expect: Option<Expect>,
}

/// The writes a PostgreSQL transaction holds back, in order.
#[derive(Default)]
pub(super) struct Pending(Vec<Write>);

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|w| &w.sql))
            .finish()
    }
}

impl Pending {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a write touching `touches` must send the held ones first.
    pub(super) fn clashes(&self, touches: &[Touch]) -> bool {
        self.0
            .iter()
            .flat_map(|w| &w.touches)
            .any(|held| touches.iter().any(|t| t.clashes_with(*held)))
    }

    pub(super) fn push(
        &mut self,
        sql: String,
        args: AnyArguments,
        touches: &[Touch],
        expect: Option<Expect>,
    ) {
        self.0.push(Write {
            sql,
            args,
            touches: touches.to_vec(),
            expect,
        });
    }

    /// Send the held writes on `conn` (the transaction's connection), as one statement.
    pub(super) async fn flush(
        &mut self,
        conn: &mut sqlx::AnyConnection,
    ) -> Result<(), sqlx::Error> {
        let mut writes = std::mem::take(&mut self.0);
        match writes.len() {
            0 => Ok(()),
            // One write needs no CTE around it.
            1 => {
                let w = writes.remove(0);
                let done = conn
                    .execute(sqlx::query_with(sqlx::AssertSqlSafe(w.sql), w.args))
                    .await?;
                w.expect.map_or(Ok(()), |e| e.check(done.rows_affected()))
            }
            _ => {
                let (sql, args, expects) = combine(writes);
                let row = conn
                    .fetch_one(sqlx::query_with(sqlx::AssertSqlSafe(sql), args))
                    .await?;
                for (i, expect) in expects.into_iter().enumerate() {
                    let rows: i64 = row.try_get(i)?;
                    if let Some(e) = expect {
                        e.check(u64::try_from(rows).unwrap_or(0))?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// One statement doing `writes`, each write's changed rows counted in one column, with
/// each write's expectation in the same order.
fn combine(writes: Vec<Write>) -> (String, AnyArguments, Vec<Option<Expect>>) {
    let mut args = AnyArguments::default();
    let mut ctes = Vec::with_capacity(writes.len());
    let mut counts = Vec::with_capacity(writes.len());
    let mut expects = Vec::with_capacity(writes.len());
    for (i, w) in writes.into_iter().enumerate() {
        let offset = args.values.0.len();
        ctes.push(format!(
            "d{i} AS ({} RETURNING 1)",
            shift_placeholders(&w.sql, offset)
        ));
        counts.push(format!("(SELECT COUNT(*) FROM d{i})"));
        args.values.0.extend(w.args.values.0);
        expects.push(w.expect);
    }
    (
        format!("WITH {} SELECT {}", ctes.join(", "), counts.join(", ")),
        args,
        expects,
    )
}

/// `sql` with each `$N` placeholder outside quotes renumbered to `$(N + by)`.
pub(super) fn shift_placeholders(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut n = 0usize;
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    n = n * 10 + d as usize;
                    chars.next();
                }
                out.push('$');
                out.push_str(&(n + by).to_string());
            }
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_shifted_outside_quotes_only() {
        assert_eq!(
            shift_placeholders(
                "UPDATE t SET a = $1, b = '$2', \"c$3\" = $10 WHERE id = $2",
                4
            ),
            "UPDATE t SET a = $5, b = '$2', \"c$3\" = $14 WHERE id = $6"
        );
        assert_eq!(
            shift_placeholders("INSERT INTO t (a) VALUES ('it''s $1', $1)", 1),
            "INSERT INTO t (a) VALUES ('it''s $1', $2)"
        );
    }

    #[test]
    fn only_single_writes_without_returning_are_deferred() {
        assert!(check_shape("UPDATE t SET a = $1 WHERE id = $2").is_ok());
        assert!(check_shape("  insert into t (a) values ($1)").is_ok());
        assert!(check_shape("DELETE FROM t WHERE id = $1").is_ok());
        assert!(check_shape("SELECT 1").is_err());
        assert!(check_shape("INSERT INTO t (a) VALUES ($1) RETURNING id").is_err());
        assert!(check_shape("WITH x AS (SELECT 1) UPDATE t SET a = 1").is_err());
        assert!(check_shape("UPDATE t SET a = 1; DELETE FROM t").is_err());
    }

    #[test]
    fn inserts_share_a_batch_but_an_update_waits() {
        let mut p = Pending::default();
        p.push(
            "INSERT INTO e (k) VALUES ($1)".into(),
            AnyArguments::default(),
            &[Touch::Insert("e")],
            None,
        );
        assert!(!p.clashes(&[Touch::Insert("e")]));
        assert!(p.clashes(&[Touch::Update("e")]));
        assert!(!p.clashes(&[Touch::Update("t")]));
        p.push(
            "UPDATE t SET a = 1".into(),
            AnyArguments::default(),
            &[Touch::Update("t")],
            None,
        );
        assert!(p.clashes(&[Touch::Insert("t")]));
        assert!(p.clashes(&[Touch::Update("t")]));
    }

    #[test]
    fn writes_that_keep_to_different_rows_share_a_batch() {
        let mut p = Pending::default();
        p.push(
            "UPDATE t SET a = 1 WHERE id = 5".into(),
            AnyArguments::default(),
            &[Touch::Row("t", 5)],
            None,
        );
        assert!(!p.clashes(&[Touch::Row("t", 6)]));
        assert!(p.clashes(&[Touch::Row("t", 5)]));
        assert!(!p.clashes(&[Touch::AllBut("t", 5)]));
        assert!(p.clashes(&[Touch::AllBut("t", 6)]));
        assert!(p.clashes(&[Touch::Update("t")]));
        assert!(p.clashes(&[Touch::Insert("t")]));
        assert!(!p.clashes(&[Touch::Update("u")]));
    }

    #[test]
    fn a_batch_counts_each_write_in_order() {
        let mk = |sql: &str, n: usize| {
            let mut args = AnyArguments::default();
            for i in 0..n {
                args.values
                    .0
                    .push(sqlx_core::any::AnyValueKind::BigInt(i as i64));
            }
            Write {
                sql: sql.into(),
                args,
                touches: vec![],
                expect: None,
            }
        };
        let (sql, args, expects) = combine(vec![
            mk("UPDATE a SET x = $1 WHERE id = $2", 2),
            mk("INSERT INTO b (y) VALUES ($1)", 1),
        ]);
        assert_eq!(expects.len(), 2);
        assert_eq!(
            sql,
            "WITH d0 AS (UPDATE a SET x = $1 WHERE id = $2 RETURNING 1), d1 AS (INSERT INTO b (y) VALUES ($3) RETURNING 1) \
             SELECT (SELECT COUNT(*) FROM d0), (SELECT COUNT(*) FROM d1)"
        );
        assert_eq!(args.values.0.len(), 3);
    }
}
