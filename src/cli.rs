//! The `confide` command line (DESIGN.md §5).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use crate::app::{public_url, App};
use crate::clock::SystemClock;
use crate::config::{Config, LogFormat};
use crate::domain::Role;
use crate::service::practices::{self, NewPracticeInput};
use crate::service::{AppState, RequestMeta};

#[derive(Parser)]
#[command(
    name = "confide",
    version,
    about = "A secure mailbox server for health and therapy practices"
)]
struct Cli {
    /// The configuration file (default ./config.toml).
    #[arg(long, global = true, env = "CONFIDE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Rebuild the search index from scratch. A running server keeps answering from the
    /// old index and moves to the new one when it is complete.
    Reindex,
    /// Administration from a script or a terminal.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Delete for good the threads past their practice's retention (`retention_years`),
    /// as the janitor does every few minutes; legal holds are respected.
    Purge {
        /// List what would be deleted, and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The audit log's hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Encryption at rest: the key-encryption key and the practices' data keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Which key-encryption key each practice's data keys are wrapped under.
    Status,
    /// Wrap every practice's data keys under a new key-encryption key, while the servers
    /// run. Resumable: run it again after an interruption. Then give every node the new
    /// key and restart them one by one.
    Rotate {
        /// The new key's file: 64 hexadecimal digits, mode 0600.
        #[arg(long)]
        new_key_file: PathBuf,
    },
    /// Give a practice a new data key and encrypt everything of it again with that key,
    /// while the servers run. Resumable: run it again after an interruption.
    Rekey {
        /// The practice's slug.
        #[arg(long)]
        practice: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the whole chain; exit 1 naming the first event that does not fit.
    Verify {
        /// A head written down earlier (`SEQ:HASH`, from `confide audit anchor`): the
        /// event at SEQ must still carry HASH.
        #[arg(long)]
        anchor: Option<String>,
    },
    /// Print the chain's head now as `SEQ:HASH`, to keep somewhere the database is not.
    Anchor,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a practice and its administrator.
    CreatePractice {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long)]
        admin_name: String,
        /// Read the administrator's password from standard input; otherwise a one-time
        /// link is printed with which they choose it.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create a demo practice with staff, clients and a few hundred threads, and print how
    /// to sign in. Everyone in it shares one generated password.
    SeedDemo {
        #[arg(long, default_value = "demo")]
        slug: String,
        #[arg(long, default_value_t = 300)]
        threads: usize,
        /// Seed of the random choices, for a reproducible demo.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Create a person in a practice.
    CreateUser {
        /// The practice's slug.
        #[arg(long)]
        practice: String,
        /// admin, provider, front_office, biller, external_agent or client.
        #[arg(long)]
        role: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Read the password from standard input; otherwise the person is invited.
        #[arg(long)]
        password_stdin: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let path_given = cli.config.is_some();
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("config.toml"));
    let config = match Config::load(&path, path_given) {
        Ok(config) => config,
        Err(line) => {
            eprintln!("error: {line}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(config.log.filter()))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,confide=info"));
    // At debug, each service call's span (with the ids it acts on) is logged as it ends.
    let spans = if filter.max_level_hint() >= Some(tracing::level_filters::LevelFilter::DEBUG) {
        tracing_subscriber::fmt::format::FmtSpan::CLOSE
    } else {
        tracing_subscriber::fmt::format::FmtSpan::NONE
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(spans)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let state = offline_state(config).await?;
            state.store.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin { command } => admin(command, config).await,
        Command::Audit { command } => audit(command, config).await,
        Command::Keys { command } => keys(command, config).await,
        Command::Purge { dry_run } => purge(dry_run, config).await,
        Command::Reindex => {
            let state = offline_state(config).await?;
            let pace = crate::search::indexer::Pace::from_config(&state.config.search);
            let (store, keys, root) = (
                state.store.clone(),
                state.keys.clone(),
                state.search.root().to_path_buf(),
            );
            let handle = tokio::runtime::Handle::current();
            let rebuilt = tokio::task::spawn_blocking(move || {
                crate::search::indexer::rebuild(&handle, &store, &keys, &root, pace)
            })
            .await??;
            state.store.close().await;
            println!(
                "search index rebuilt: {} messages in {:.1} s",
                rebuilt.messages,
                rebuilt.elapsed.as_secs_f64()
            );
            Ok(())
        }
    }
}

async fn purge(dry_run: bool, config: Config) -> anyhow::Result<()> {
    use crate::service::retention;
    let state = offline_state(config).await?;
    let result = if dry_run {
        retention::expired(&state, i64::MAX).await.map(|expired| {
            for e in &expired {
                let at = crate::clock::to_datetime(e.last_activity_at).format("%Y-%m-%d");
                println!("{} {} last active {at}", e.practice_slug, e.thread_id);
            }
            println!("{} threads would be deleted", expired.len());
        })
    } else {
        retention::purge(&state)
            .await
            .map(|purged| println!("{purged} threads deleted"))
    };
    state.store.close().await;
    result.map_err(|e| anyhow::anyhow!(e.describe()))
}

async fn audit(command: AuditCommand, config: Config) -> anyhow::Result<()> {
    use crate::service::audit;
    let state = offline_state(config).await?;
    let result = match command {
        AuditCommand::Verify { anchor } => {
            let anchor = anchor
                .as_deref()
                .map(audit::parse_anchor)
                .transpose()
                .map_err(|e| anyhow::anyhow!(e.describe()))?;
            let check = audit::verify(&state.store, anchor.as_ref())
                .await
                .map_err(|e| anyhow::anyhow!(e.describe()))?;
            match check.broken_at {
                None => {
                    println!(
                        "audit chain intact: {} events; head {}:{}",
                        check.events, check.head_seq, check.head_hash
                    );
                    Ok(())
                }
                Some(seq) => Err(anyhow::anyhow!(
                    "audit chain broken at seq {seq} ({} events fit before it)",
                    check.events
                )),
            }
        }
        AuditCommand::Anchor => {
            let (seq, hash) = audit::anchor(&state.store)
                .await
                .map_err(|e| anyhow::anyhow!(e.describe()))?;
            println!("{seq}:{hash}");
            Ok(())
        }
    };
    state.store.close().await;
    result
}

async fn keys(command: KeysCommand, config: Config) -> anyhow::Result<()> {
    use crate::service::sealing;
    if let KeysCommand::Rekey { practice } = &command {
        let state = offline_state(config).await?;
        let result = sealing::rekey(&state, practice).await.map(|done| {
            println!(
                "practice {practice}: data key generation {} now seals everything; {} rows \
                 and {} files encrypted again in {} passes",
                done.generation, done.values, done.files, done.passes
            )
        });
        state.store.close().await;
        return result;
    }
    let Some(kek) = crate::service::keys::load_kek(&config)? else {
        bail!("encryption is off (encryption.enabled = false): there are no keys");
    };
    // Not the whole server: a rotation cut short leaves keys under two keys, which a
    // starting node refuses, but which this command must read to finish.
    let store = crate::store::Store::open(
        &config.database_url(),
        config.database.max_connections,
        config.database.busy_timeout_ms,
    )
    .await?;
    let result = match command {
        KeysCommand::Status => sealing::status(&store, &kek).await.map(|lines| {
            for line in lines {
                println!("{line}");
            }
        }),
        KeysCommand::Rekey { .. } => unreachable!("handled above"),
        KeysCommand::Rotate { new_key_file } => {
            let new = crate::service::keys::read_kek_file(&new_key_file)?;
            sealing::rotate(&store, &kek, &new).await.map(|n| {
                println!(
                    "{n} data keys now wrapped under key-encryption key {}; give every node \
                     this key (encryption.key_file or CONFIDE__ENCRYPTION__KEY) and restart \
                     them; the old key opens nothing any more",
                    new.id()
                )
            })
        }
    };
    store.close().await;
    result
}

async fn serve(config: Config) -> anyhow::Result<()> {
    config.check_for_serving().map_err(anyhow::Error::msg)?;
    let app = App::build(config).await?;
    tracing::info!(address = %app.address(), "listening");
    println!("Confide is listening on http://{}", app.address());
    match practices::setup_link_if_empty(app.state()).await {
        Ok(Some(link)) => {
            println!("No practice exists yet. Open this one-time link to create the first one:\n\n    {link}\n");
        }
        Ok(None) => {}
        Err(e) => bail!("cannot prepare the setup link: {e}"),
    }
    app.run_until(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

async fn offline_state(config: Config) -> anyhow::Result<AppState> {
    let url = public_url(&config, config.server.bind);
    AppState::open(config, Arc::new(SystemClock), url).await
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .context("reading the password from standard input")?;
    let password = input.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("--password-stdin: standard input held no password");
    }
    Ok(password)
}

async fn admin(command: AdminCommand, config: Config) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreatePractice {
            slug,
            name,
            admin_email,
            admin_name,
            password_stdin,
        } => {
            let password = password_stdin.then(read_password_stdin).transpose()?;
            let practice = NewPracticeInput {
                slug: &slug,
                name: &name,
                admin_name: &admin_name,
                admin_email: &admin_email,
                admin_password: password.as_deref(),
            };
            admin_create_practice(practice, config).await
        }
        AdminCommand::SeedDemo {
            slug,
            threads,
            seed,
        } => admin_seed_demo(&slug, threads, seed, config).await,
        AdminCommand::CreateUser {
            practice,
            role,
            email,
            name,
            password_stdin,
        } => {
            let user = NewUserArgs {
                practice: &practice,
                role: &role,
                email: &email,
                name: &name,
                password_stdin,
            };
            admin_create_user(user, config).await
        }
    }
}

/// `admin create-practice`: creates the practice and its administrator, and prints them
/// with the administrator's one-time link when they were given no password.
async fn admin_create_practice(
    practice: NewPracticeInput<'_>,
    config: Config,
) -> anyhow::Result<()> {
    let state = offline_state(config).await?;
    let created = practices::create_practice(&state, &RequestMeta::default(), practice)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.describe()))?;
    println!(
        "created practice {} ({})",
        created.practice.slug, created.practice.id
    );
    println!(
        "administrator {} ({})",
        created.admin.email, created.admin.id
    );
    if let Some(link) = created.invitation_url {
        println!("one-time link for the administrator to choose a password (valid 7 days):\n\n    {link}\n");
    }
    state.store.close().await;
    Ok(())
}

/// `admin seed-demo`: creates the demo practice and prints how to sign in to it.
async fn admin_seed_demo(
    slug: &str,
    threads: usize,
    seed: u64,
    config: Config,
) -> anyhow::Result<()> {
    let state = offline_state(config).await?;
    let demo = crate::service::seed::seed_demo(&state, slug, threads.min(10_000), seed)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.describe()))?;
    println!(
        "created the demo practice {} with {} threads",
        demo.practice_slug, demo.threads
    );
    println!("everyone's password: {}", demo.password);
    println!(
        "open the inbox at {}/p/{}/ and sign in as anyone below;",
        state.public_url, demo.practice_slug
    );
    println!(
        "or use the API at {}/api/docs with POST /sessions, e.g.",
        state.public_url
    );
    println!(
        "  {{\"practice\": \"{}\", \"email\": \"{}\", \"password\": \"{}\"}}\n",
        demo.practice_slug, demo.people[0].2, demo.password
    );
    for (role, name, email) in &demo.people {
        println!("  {:<15} {name:<34} {email}", role.as_str());
    }
    state.store.close().await;
    Ok(())
}

/// The arguments of `admin create-user`, as given on the command line.
struct NewUserArgs<'a> {
    practice: &'a str,
    role: &'a str,
    email: &'a str,
    name: &'a str,
    password_stdin: bool,
}

/// `admin create-user`: checks the role, creates the person (invited unless a password was
/// read from standard input) and prints them with their invitation link if any.
async fn admin_create_user(user: NewUserArgs<'_>, config: Config) -> anyhow::Result<()> {
    let role: Role = user.role.parse().map_err(|_| {
        anyhow::anyhow!(
            "--role must be one of admin, provider, front_office, biller, external_agent, client"
        )
    })?;
    let password = user.password_stdin.then(read_password_stdin).transpose()?;
    let state = offline_state(config).await?;
    let (person, link) = practices::create_user(
        &state,
        user.practice,
        role,
        user.email,
        user.name,
        password.as_deref(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.describe()))?;
    println!(
        "created {} {} ({}), status {}",
        person.role, person.email, person.id, person.status
    );
    if let Some(link) = link {
        println!("invitation link (valid 7 days):\n\n    {link}\n");
    }
    state.store.close().await;
    Ok(())
}
