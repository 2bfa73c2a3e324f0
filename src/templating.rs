//! Template environments (模板环境) shared by pages and mails: files under the templates
//! directory, loaded on first use, with the platform's Chinese-friendly filters. The web
//! layer adds its page helpers on top; the mailer keeps its own environment.

use std::path::Path;

use minijinja::Environment;

/// Files under `dir` with the filters every template may use: `datetime`, `date` (Asia/Shanghai),
/// `wan` (fen → 万元) and `yuan` (fen → yuan with two places).
pub fn base_env(dir: &Path) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_loader(minijinja::path_loader(dir));
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    env.add_filter("datetime", |ts: i64| crate::clock::display(ts));
    env.add_filter("date", |ts: i64| {
        crate::clock::display(ts)
            .chars()
            .take(10)
            .collect::<String>()
    });
    env.add_filter("wan", |fen: i64| crate::domain::Yuan::from_fen(fen).wan());
    env.add_filter("yuan", |fen: i64| {
        crate::domain::Yuan::from_fen(fen).to_string()
    });
    env
}
