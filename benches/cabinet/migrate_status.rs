//! `migrate status` against `alembic current` on the same database.

use std::{path::PathBuf, process::Command};

use crate::{
    Bench, SUPERUSER,
    measure::timed,
    report::{Row, Stats},
};

const ALEMBIC_ENV: &str = r#"from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config

def run_migrations_online():
    connectable = engine_from_config(config.get_section(config.config_ini_section), prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()

run_migrations_online()
"#;

const ALEMBIC_REVISION: &str = r#""""create sites and users

Revision ID: 3f2a9c1b7d4e
"""
from alembic import op
import sqlalchemy as sa

revision = "3f2a9c1b7d4e"
down_revision = None

def upgrade():
    op.create_table("sites",
        sa.Column("site_id", sa.String, primary_key=True), sa.Column("domain", sa.String),
        sa.Column("ai_script_id", sa.String), sa.Column("ai_prompt", sa.Text), sa.Column("brand_name", sa.String),
        sa.Column("language", sa.String), sa.Column("hubspot_pipeline", sa.String), sa.Column("hubspot_stage", sa.String),
        sa.Column("created_at", sa.DateTime))
    op.create_table("users",
        sa.Column("user_id", sa.String, primary_key=True), sa.Column("email", sa.String),
        sa.Column("first_seen", sa.DateTime), sa.Column("last_seen", sa.DateTime))

def downgrade():
    op.drop_table("users")
    op.drop_table("sites")
"#;

/// `scripts/setup tests`' virtualenv with Alembic, SQLAlchemy and psycopg from PyPI (pinned; the
/// Python tests use the same one).
fn alembic_venv() -> Result<PathBuf, String> {
    let alembic = crate::lab::tools_dir().join("python/bin/alembic");
    if alembic.is_file() {
        Ok(alembic)
    } else {
        Err(format!("no {}: run scripts/setup tests", alembic.display()))
    }
}

pub async fn migrate_status(bench: &Bench) -> Vec<Row> {
    let alembic = alembic_venv().unwrap_or_else(|why| panic!("the Alembic comparison needs Alembic: {why}"));
    bench.exec("postgres", "CREATE DATABASE alembic_bench").await;
    let project = bench.work.path().join("alembic");
    std::fs::create_dir_all(project.join("versions")).unwrap();
    let url = format!(
        "postgresql+psycopg://{SUPERUSER}:{}@127.0.0.1:{}/alembic_bench",
        bench.password, bench.cluster.port
    );
    std::fs::write(
        project.join("alembic.ini"),
        format!("[alembic]\nscript_location = {}\nsqlalchemy.url = {url}\n", project.display()),
    )
    .unwrap();
    std::fs::write(project.join("env.py"), ALEMBIC_ENV).unwrap();
    std::fs::write(project.join("script.py.mako"), "").unwrap();
    std::fs::write(project.join("versions/3f2a9c1b7d4e_create.py"), ALEMBIC_REVISION).unwrap();
    let run_alembic = |command: &str| {
        let mut c = Command::new(&alembic);
        c.arg("-c").arg(project.join("alembic.ini")).arg(command);
        c
    };
    let mut upgrade = run_alembic("upgrade");
    upgrade.arg("head");
    timed(&mut upgrade);
    let times = if bench.args.quick { 1 } else { 7 };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..times {
        ours.push(
            timed(
                Command::new(&bench.binary)
                    .args(["migrate", "status"])
                    .env("DATABASE_URL", bench.url("bench").expose()),
            )
            .0,
        );
        theirs.push(timed(&mut run_alembic("current")).0);
    }
    let (ours, theirs) = (Stats::of(ours), Stats::of(theirs));
    let ratio = theirs.median / ours.median;
    vec![Row {
        work: "migrate status on an up-to-date database".into(),
        unit: "s".into(),
        ours,
        reference_name: "alembic current (equivalent project)".into(),
        reference: theirs,
        ratio,
        goal: "≥ 20× faster".into(),
        met: ratio >= 20.0,
    }]
}
