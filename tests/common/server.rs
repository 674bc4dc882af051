//! Database servers that a test starts, stops and restarts itself, on a free loopback port and in
//! a data directory of its own: never the shared servers.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Command, Stdio},
};

/// A throwaway PostgreSQL cluster (`initdb` + `pg_ctl`), removed when dropped.
pub struct TempPostgres {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

impl TempPostgres {
    /// Creates and starts a cluster with trust authentication for the `postgres` user.
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql")
            .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
            .find(|bin| bin.join("initdb").exists())
            .expect("an initdb");
        let dir = std::env::temp_dir().join(format!("pss_pg_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let server = Self { dir, bin, port };
        server.chown_to_postgres();
        server.run(
            "initdb",
            &[
                "-D",
                &server.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        server.resume();
        server
    }

    /// The URL of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once, as a crash or a failover would (`immediate` mode).
    pub fn kill(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "stop", "-m", "immediate", "-w"],
        );
    }

    /// Starts the server again on the same port, and waits until it accepts connections.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn chown_to_postgres(&self) {
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres", &self.dir.display().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    /// Runs a server binary, as the `postgres` user when we are root (PostgreSQL refuses root).
    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program).display().to_string();
        let mut command = match is_root() {
            true => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--", &program]);
                c
            }
            false => Command::new(&program),
        };
        let output = command.args(args).stdin(Stdio::null()).output().unwrap();
        assert!(
            output.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let stop = ["-D", &self.data(), "stop", "-m", "immediate", "-w"].map(str::to_owned);
        let mut command = match is_root() {
            true => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--", &pg_ctl]);
                c
            }
            false => Command::new(&pg_ctl),
        };
        let _ = command
            .args(stop)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A throwaway MariaDB server (`mariadb-install-db` + `mariadbd`), removed when dropped.
pub struct TempMariadb {
    dir: PathBuf,
    pub port: u16,
    process: std::sync::Mutex<Option<std::process::Child>>,
}

impl TempMariadb {
    /// Creates and starts a server whose `root` user has no password.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("pss_maria_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let output = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                &format!("--datadir={}", dir.join("data").display()),
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("mariadb-install-db");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let server = Self {
            dir,
            port: free_port(),
            process: std::sync::Mutex::new(None),
        };
        server.resume();
        server
    }

    /// The URL of the server's `mysql` database.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/mysql", self.port)
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn kill(&self) {
        if let Some(mut child) = self.process.lock().unwrap().take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts the server again on the same port and waits until it answers.
    pub fn resume(&self) {
        let child = Command::new("mariadbd")
            .args([
                "--no-defaults",
                &format!("--datadir={}", self.dir.join("data").display()),
                &format!("--port={}", self.port),
                &format!("--socket={}", self.dir.join("mysqld.sock").display()),
                &format!("--pid-file={}", self.dir.join("mysqld.pid").display()),
                "--bind-address=127.0.0.1",
                "--user=root",
                "--innodb-flush-log-at-trx-commit=2",
                "--skip-log-bin",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("server.log")).unwrap())
            .spawn()
            .expect("mariadbd");
        *self.process.lock().unwrap() = Some(child);
        for _ in 0..600 {
            let ping = Command::new("mariadb-admin")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-P",
                    &self.port.to_string(),
                    "-u",
                    "root",
                    "ping",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if ping.map(|s| s.success()).unwrap_or(false) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "mariadbd did not start: see {}",
            self.dir.join("server.log").display()
        );
    }
}

impl Drop for TempMariadb {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
