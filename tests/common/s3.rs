//! An S3-compatible server (moto, from the test virtualenv) for tests that store
//! attachments in object storage.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::mail;

/// The server: where it listens.
pub struct Moto {
    pub port: u16,
}

/// One S3-compatible server (moto) for the whole test binary; each test gets a bucket.
pub fn moto() -> Option<&'static Moto> {
    static MOTO: OnceLock<Option<Moto>> = OnceLock::new();
    MOTO.get_or_init(|| {
        let python = mail::python_with("moto.server")?;
        let port = mail::free_port();
        // The server dies with this test process (PR_SET_PDEATHSIG).
        let script = format!(
            "import ctypes, signal; ctypes.CDLL(None).prctl(1, signal.SIGTERM); \
             from moto.server import main; main(['-H', '127.0.0.1', '-p', '{port}'])"
        );
        // The death signal follows the thread that started the child, so a thread that
        // lives as long as the process starts it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut child = Command::new(python)
                .args(["-c", &script])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start moto");
            tx.send(()).unwrap();
            let _ = child.wait();
        });
        rx.recv().unwrap();
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Moto { port });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("moto did not start");
    })
    .as_ref()
}

impl Moto {
    /// A new bucket of its own; returns its name.
    pub async fn bucket(&self) -> String {
        let bucket = format!("confide-{}", hex::encode(rand::random::<[u8; 6]>()));
        let created = reqwest::Client::new()
            .put(format!("http://127.0.0.1:{}/{bucket}", self.port))
            .send()
            .await
            .expect("create bucket");
        assert!(
            created.status().is_success(),
            "create bucket: {}",
            created.status()
        );
        bucket
    }
}
