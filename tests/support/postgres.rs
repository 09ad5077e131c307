//! A real PostgreSQL 15 (Debian's), initialised in a temporary directory and started on
//! a free loopback port, with password (SCRAM) authentication over TCP — `VALID UNTIL` is
//! only enforced for password logins. Seeded with one schema per department holding a
//! table and a view, a `<dept>_reader` role with SELECT on the view only, and
//! `docs_admin` (CREATEROLE, ADMIN OPTION on the readers). Hardened as
//! docs/credentials.md asks of a DBA: `PUBLIC` (every dynamic role) may not connect to
//! any database — `postgres` is opened to the readers and the admin only, `template1`
//! and another application's database, `payroll`, to no one else — nor create temporary
//! tables or create in schema `public`. Stopped on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::net::free_port;

pub const ADMIN_USER: &str = "docs_admin";
pub const ADMIN_PASSWORD: &str = "admin-demo-password";
const SUPERUSER_PASSWORD: &str = "postgres-demo-password";
pub const DEPARTMENTS: [&str; 4] = ["engineering", "finance", "admin", "hr"];
/// Another application's database on the same server.
pub const OTHER_DATABASE: &str = "payroll";

pub struct Postgres {
    pub port: u16,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

fn bin(name: &str) -> PathBuf {
    let p = Path::new("/usr/lib/postgresql/15/bin").join(name);
    assert!(
        p.exists(),
        "PostgreSQL 15 not found (apt-get install postgresql; .ci/run does)"
    );
    p
}

/// Runs `program` as the `postgres` account (initdb refuses root).
fn as_postgres(program: &Path, args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    pub async fn start() -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        let chown = |p: &Path| {
            assert!(
                Command::new("chown")
                    .arg("postgres:")
                    .arg(p)
                    .status()
                    .unwrap()
                    .success()
            )
        };
        chown(&d);
        let pwfile = d.join("pwfile");
        std::fs::write(&pwfile, SUPERUSER_PASSWORD).unwrap();
        chown(&pwfile);
        let data = d.join("data");
        as_postgres(
            &bin("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "scram-sha-256",
                "-U",
                "postgres",
                "--pwfile",
                pwfile.to_str().unwrap(),
                "--no-sync",
            ],
        );
        let port = free_port();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off",
            d.display()
        );
        as_postgres(
            &bin("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                d.join("log").to_str().unwrap(),
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
        let pg = Postgres {
            port,
            data,
            _dir: dir,
        };
        pg.seed().await;
        pg
    }

    async fn seed(&self) {
        let client = self.connect("postgres", SUPERUSER_PASSWORD).await.unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {OTHER_DATABASE}"))
            .await
            .unwrap();
        let mut sql = format!(
            "CREATE ROLE {ADMIN_USER} WITH LOGIN CREATEROLE PASSWORD '{ADMIN_PASSWORD}';\n\
             REVOKE ALL ON DATABASE postgres, template1, {OTHER_DATABASE} FROM PUBLIC;\n\
             REVOKE CREATE ON SCHEMA public FROM PUBLIC;\n\
             GRANT CONNECT ON DATABASE postgres TO {ADMIN_USER};\n"
        );
        for d in DEPARTMENTS {
            sql += &format!(
                "CREATE SCHEMA {d};\n\
                 CREATE TABLE {d}.documents (id text, title text, body text);\n\
                 INSERT INTO {d}.documents VALUES ('{d}-1', '{d} document', 'secret body');\n\
                 CREATE VIEW {d}.documents_view AS SELECT id, title FROM {d}.documents;\n\
                 CREATE ROLE {d}_reader NOLOGIN;\n\
                 GRANT USAGE ON SCHEMA {d} TO {d}_reader;\n\
                 GRANT SELECT ON {d}.documents_view TO {d}_reader;\n\
                 GRANT CONNECT ON DATABASE postgres TO {d}_reader;\n\
                 GRANT {d}_reader TO {ADMIN_USER} WITH ADMIN OPTION;\n"
            );
        }
        client.batch_execute(&sql).await.unwrap();
    }

    /// A connection to database `postgres` over TCP with a password.
    pub async fn connect(
        &self,
        user: &str,
        password: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        self.connect_to("postgres", user, password).await
    }

    /// A connection to `database` over TCP with a password.
    pub async fn connect_to(
        &self,
        database: &str,
        user: &str,
        password: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .dbname(database)
            .user(user)
            .password(password)
            .connect(tokio_postgres::NoTls)
            .await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// A connection as the superuser (for a transaction a test holds open).
    pub async fn superuser_client(&self) -> tokio_postgres::Client {
        self.connect("postgres", SUPERUSER_PASSWORD).await.unwrap()
    }

    /// Runs `sql` as the superuser.
    pub async fn superuser(&self, sql: &str) {
        self.superuser_in("postgres", sql).await;
    }

    /// Runs `sql` as the superuser in `database`.
    pub async fn superuser_in(&self, database: &str, sql: &str) {
        let client = self
            .connect_to(database, "postgres", SUPERUSER_PASSWORD)
            .await
            .unwrap();
        client.batch_execute(sql).await.unwrap();
    }

    /// The first column of `sql`'s rows, as text, run as the superuser.
    pub async fn superuser_strings(&self, sql: &str) -> Vec<String> {
        let client = self.connect("postgres", SUPERUSER_PASSWORD).await.unwrap();
        client
            .simple_query(sql)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0)?.to_string()),
                _ => None,
            })
            .collect()
    }

    /// The names of the roles starting with `prefix`.
    pub async fn roles(&self, prefix: &str) -> Vec<String> {
        let client = self.connect("postgres", SUPERUSER_PASSWORD).await.unwrap();
        client
            .query(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1",
                &[&prefix],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin("pg_ctl"))
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}
