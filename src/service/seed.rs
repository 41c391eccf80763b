//! `confide admin seed-demo`: a demo practice with staff, clients and a few hundred
//! threads, made through the same use-cases as real traffic, so that a newcomer can
//! explore the API at once.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::domain::ids::ThreadId;
use crate::domain::password::NewPassword;
use crate::domain::values::{EmailAddress, PersonName};
use crate::domain::{Code, PracticeId, Role, SessionId};
use crate::error::AppResult;

use super::mailbox::compose::{self, ComposeInput};
use super::people::{insert_person, NewPerson};
use super::practices::{self, NewPracticeInput};
use super::{AppState, Caller, Person, RequestMeta};

const STAFF: [(Role, &str); 8] = [
    (Role::Provider, "Dr. Maya Okafor"),
    (Role::Provider, "Dr. Jonas Lindqvist"),
    (Role::Provider, "Priya Raman, LCSW"),
    (Role::FrontOffice, "Ana Souza"),
    (Role::FrontOffice, "Ben Carter"),
    (Role::Biller, "Grace Kim"),
    (Role::Biller, "Tomas Herrera"),
    (Role::ExternalAgent, "Lee Whitfield (care coordinator)"),
];

const CLIENTS: [&str; 20] = [
    "Alex Morgan",
    "Jordan Lee",
    "Sam Rivera",
    "Taylor Brooks",
    "Casey Nguyen",
    "Riley Patel",
    "Jamie Fischer",
    "Drew Okonkwo",
    "Quinn Larsen",
    "Avery Dubois",
    "Morgan Ito",
    "Reese Campbell",
    "Skyler Haddad",
    "Parker Novak",
    "Rowan Schmidt",
    "Emerson Bauer",
    "Finley Ortiz",
    "Hayden Silva",
    "Kendall Moreau",
    "Logan Yamamoto",
];

const SUBJECTS: [&str; 10] = [
    "Rescheduling next week's session",
    "Question about my invoice",
    "Homework from our last session",
    "Insurance pre-authorization",
    "Running late today",
    "Resources we discussed",
    "Intake forms",
    "Group session on Thursday",
    "Change of address",
    "Receipt for my records",
];

const BODIES: [&str; 8] = [
    "Hello, could we move our appointment to **Thursday afternoon**? Any time after 2 pm works for me.",
    "Thanks for today. As promised, here are the exercises:\n\n- breathing, 5 minutes each morning\n- the thought record sheet\n\nSee you next week.",
    "I received a statement but the amount looks different from what I expected. Could you check it, please?",
    "Your insurer approved 12 sessions. Let us know if anything changes with your coverage.",
    "Just a reminder that the office is closed on Monday. Your appointment moves to Tuesday at the same time.",
    "Here is the [article](https://example.org/sleep-hygiene) I mentioned about sleep routines.",
    "Please complete the intake forms before your first visit; it takes about ten minutes.",
    "Thank you, that works for me. See you then.",
];

const REPLIES: [&str; 5] = [
    "Thank you, that works for me.",
    "Got it — I will update your file today.",
    "Could you send me a little more detail?",
    "Perfect, see you then.",
    "Thanks for letting us know.",
];

pub struct SeededDemo {
    pub practice_slug: String,
    pub password: String,
    /// (role, name, email) of everyone created.
    pub people: Vec<(Role, String, String)>,
    pub threads: usize,
}

fn email_of(name: &str, slug: &str) -> String {
    let local: String = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|p| !p.is_empty() && !matches!(*p, "Dr" | "LCSW"))
        .map(|p| p.to_lowercase())
        .collect::<Vec<_>>()
        .join(".");
    let local: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    format!("{local}@{slug}.example")
}

fn demo_password(rng: &mut StdRng) -> String {
    const WORDS: [&str; 24] = [
        "amber", "birch", "cobalt", "delta", "ember", "fjord", "garnet", "harbor", "indigo",
        "juniper", "kelp", "lumen", "meadow", "nectar", "orbit", "pebble", "quartz", "raven",
        "saffron", "tundra", "umber", "velvet", "willow", "zephyr",
    ];
    let words: Vec<&str> = (0..4)
        .map(|_| *WORDS.choose(rng).unwrap_or(&"amber"))
        .collect();
    format!("{}-{}", words.join("-"), rng.random_range(10..100))
}

fn as_caller(state: &AppState, person: &Person) -> Caller {
    Caller {
        person: person.clone(),
        session_id: SessionId::from_trusted("seed-demo".into()),
        meta: RequestMeta::default(),
        keys: state.keys.clone(),
    }
}

/// Creates the demo practice `slug` with its people and `threads` threads.
pub async fn seed_demo(
    state: &AppState,
    slug: &str,
    threads: usize,
    seed: u64,
) -> AppResult<SeededDemo> {
    let mut rng = StdRng::seed_from_u64(seed);
    let password = demo_password(&mut rng);
    let admin_email = format!("admin@{slug}.example");
    let created = practices::create_practice(
        state,
        &RequestMeta::default(),
        NewPracticeInput {
            slug,
            name: "Maple Street Counseling (demo)",
            admin_name: "Robin Admin",
            admin_email: &admin_email,
            admin_password: Some(&password),
        },
    )
    .await?;
    let practice_id = PracticeId::from_trusted(created.practice.id.clone());
    let slug = created.practice.slug.clone();
    let cast = add_people(state, &practice_id, &slug, &password).await?;
    let mut people = vec![(
        Role::Admin,
        created.admin.name.clone(),
        created.admin.email.clone(),
    )];
    people.extend(
        cast.staff
            .iter()
            .chain(&cast.clients)
            .map(|p| (p.role, p.name.clone(), p.email.clone())),
    );
    let mut sent = 0;
    for i in 0..threads {
        write_conversation(state, &cast, &mut rng, i).await?;
        sent += 1;
    }
    Ok(SeededDemo {
        practice_slug: slug,
        password,
        people,
        threads: sent,
    })
}

/// The demo's staff and clients.
struct DemoCast {
    staff: Vec<Person>,
    clients: Vec<Person>,
}

impl DemoCast {
    fn with_role(&self, role: Role) -> Vec<&Person> {
        self.staff.iter().filter(|p| p.role == role).collect()
    }
}

/// Adds the demo's staff and clients, all with the demo password (one hash, not thirty).
async fn add_people(
    state: &AppState,
    practice_id: &PracticeId,
    slug: &str,
    password: &str,
) -> AppResult<DemoCast> {
    let hash = state
        .hasher
        .hash(NewPassword::parse("password", password, &[])?.expose())
        .await?;
    let mut cast = DemoCast {
        staff: Vec::new(),
        clients: Vec::new(),
    };
    let mut tx = state.store.begin().await?;
    let everyone = STAFF
        .iter()
        .copied()
        .chain(CLIENTS.iter().map(|n| (Role::Client, *n)));
    for (role, name) in everyone {
        let new = NewPerson {
            role,
            name: PersonName::parse("name", name)?,
            email: EmailAddress::parse("email", &email_of(name, slug))?,
            mobile: None,
        };
        let person = insert_person(&mut tx, state, practice_id, &new, Some(&hash)).await?;
        if role == Role::Client {
            cast.clients.push(person);
        } else {
            cast.staff.push(person);
        }
    }
    tx.commit().await?;
    Ok(cast)
}

/// The `i`th demo thread: who writes to whom cycles through the usual kinds of message,
/// and most threads get a short exchange of replies.
async fn write_conversation(
    state: &AppState,
    cast: &DemoCast,
    rng: &mut StdRng,
    i: usize,
) -> AppResult<()> {
    let providers = cast.with_role(Role::Provider);
    let client = &cast.clients[rng.random_range(0..cast.clients.len())];
    let provider = providers[rng.random_range(0..providers.len())];
    let subject = SUBJECTS[rng.random_range(0..SUBJECTS.len())].to_string();
    let body = BODIES[rng.random_range(0..BODIES.len())].to_string();
    let (sender, to) = who_writes(cast, rng, i, client, provider);
    let input = ComposeInput {
        to,
        subject,
        body,
        ..Default::default()
    };
    let (thread_id, _) = compose::compose(state, &as_caller(state, sender), input, None).await?;
    if i % 6 == 5 {
        return Ok(());
    }
    // A short exchange: the other side answers, sometimes back and forth.
    let answerer = if sender.role == Role::Client {
        provider
    } else {
        client
    };
    let thread_id = ThreadId::from_trusted(thread_id);
    for turn in 0..rng.random_range(0..4) {
        let who = if turn % 2 == 0 { answerer } else { sender };
        let reply = REPLIES[rng.random_range(0..REPLIES.len())];
        let input = compose::ReplyInput {
            body: reply.to_string(),
            ..Default::default()
        };
        match compose::reply(state, &as_caller(state, who), &thread_id, &input, None).await {
            Ok(_) => {}
            // A group thread may not have reached this provider; skip the reply.
            Err(e) if e.code == Code::NotFound => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The sender and `to` of the `i`th demo thread.
fn who_writes<'a>(
    cast: &'a DemoCast,
    rng: &mut StdRng,
    i: usize,
    client: &'a Person,
    provider: &'a Person,
) -> (&'a Person, Vec<String>) {
    match i % 6 {
        // A client writes to their provider, or to billing.
        0 | 1 => (client, vec![format!("user:{}", provider.id)]),
        2 => (client, vec!["group:billers".to_string()]),
        // Staff write to a client and a colleague.
        3 => (
            provider,
            vec![format!("user:{}", client.id), "group:front_office".into()],
        ),
        4 => (
            cast.with_role(Role::FrontOffice)[0],
            vec![format!("user:{}", client.id)],
        ),
        // A provider writes to a small group of clients: nobody may reply.
        _ => {
            let others: Vec<String> = cast
                .clients
                .choose_multiple(rng, 3)
                .map(|c| format!("user:{}", c.id))
                .collect();
            (provider, others)
        }
    }
}
