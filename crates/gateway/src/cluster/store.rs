//! The session records in the store (Redis or Valkey), and the atomic steps on them: write
//! one at `initialize` (with the first round of its journal), claim one for this instance (a Lua compare-and-set that raises the
//! record's epoch), delete one only while it is still ours, and check which of the sessions
//! held here are still ours.
//!
//! A record, `<prefix>:s:{<session id>}` (the braces make it a Redis Cluster hash tag), is a
//! hash: `kind` (`legacy`/`streamable`), `cred` (whom the session is bound to: a digest,
//! never a token), `hs` (the handshake as JSON), `owner` (`<node>:<boot id>`) and `epoch`
//! (raised by every claim). It expires after the idle timeout, refreshed while held.
//!
//! Beside it, with the same lifetime: the session's journal `<record>:j`, a Redis Stream
//! of the events sent to its clients (fields `st` stream, `sq` number, `d` the message;
//! `MAXLEN ~` the event log's size), and `<record>:p`, a hash of the requests whose answers
//! are due on an event stream (the request id as JSON, to the stream's number). Both are
//! written by a script that, for each session's batch, first checks that this instance
//! still holds the session at its epoch, so an instance that lost a session writes nothing
//! more of it; one call writes the batches of up to 64 sessions (`append`), and the records
//! of those among them created since the last round, before their batches.

use std::time::Duration;

use bytes::Bytes;
use mcpgw_transport::auth::{Identity, Principal, digest_hex};
use mcpgw_transport::event_log::EventId;
use mcpgw_transport::journal::JournalEntry;
use mcpgw_transport::routes::History;
use mcpgw_transport::{NodeTag, SessionId, SessionKind};
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::append::{APPEND, APPEND_SESSIONS, add_batches};

/// How long one command (or one pipeline) may take before it counts as failed.
const COMMAND_DEADLINE: Duration = Duration::from_secs(2);

/// A store that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The store did not answer, or answered with an error.
    #[error("the session store: {0}")]
    Redis(#[from] redis::RedisError),
    /// It did not answer in time.
    #[error("the session store did not answer within {0:?}")]
    Timeout(Duration),
    /// Another live instance runs with this node tag.
    #[error("node tag {0} is in use by another instance (each instance needs its own)")]
    NodeInUse(NodeTag),
}

/// What one session queued for its journal since its last write.
#[derive(Debug)]
pub(crate) struct JournalBatch {
    /// The session.
    pub(crate) id: SessionId,
    /// The epoch this instance holds it at.
    pub(crate) epoch: u64,
    /// The entries, oldest first.
    pub(crate) entries: Vec<JournalEntry>,
    /// The session's record, when it was created here since the last round: written first.
    pub(crate) create: Option<NewRecord>,
}

/// The record of a session created here, as the journal's writer writes it (at epoch 0).
#[derive(Debug, Clone)]
pub(crate) struct NewRecord {
    pub(crate) kind: SessionKind,
    /// Whom the session is bound to, as the record keeps it.
    pub(crate) cred: String,
    /// The handshake, as JSON.
    pub(crate) handshake: String,
}

impl NewRecord {
    pub(crate) fn new(kind: SessionKind, owner: Option<&Identity>, handshake: String) -> Self {
        Self { kind, cred: credential(owner), handshake }
    }
}

/// A session held here that another instance holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lost {
    /// The session.
    pub(crate) id: SessionId,
    /// The instance that holds it now, if it still has an owner.
    pub(crate) taker: Option<NodeTag>,
}

/// A session claimed for this instance.
#[derive(Debug)]
pub(crate) struct Claimed {
    /// Its new epoch: this instance's generation of it.
    pub(crate) epoch: u64,
    /// Its recorded handshake (JSON).
    pub(crate) handshake: String,
    /// Who held it before (`<node>:<boot id>`).
    pub(crate) previous: String,
}

/// Takes the session for this instance when it is of the kind and credential asked for:
/// raises its epoch and names this instance its owner, in one step.
const CLAIM: &str = r"
local r = redis.call('HMGET', KEYS[1], 'kind', 'cred', 'owner', 'hs')
if not r[1] or r[1] ~= ARGV[1] or r[2] ~= ARGV[2] or not r[4] then return false end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'owner', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {epoch, r[4], r[3] or ''}
";

/// Deletes the record, its journal and its pending requests while this instance still
/// holds it at this epoch.
const RELEASE: &str = r"
local r = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if r[1] == ARGV[1] and r[2] == ARGV[2] then return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) end
return 0
";

/// Keeps this instance's node key: renews it while it holds the key, takes it again when
/// it is gone (the store restarted), and says 0 when another instance holds it.
const RENEW_NODE: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not owner then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
";

/// Deletes this instance's node key, if it is still its own.
const LEAVE_NODE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// How long a node key lives without being renewed (every [`super::FENCE_PERIOD`]).
const NODE_TTL: Duration = Duration::from_secs(3);

/// The connection to the store, and who this instance is in it.
pub(crate) struct Store {
    connection: ConnectionManager,
    prefix: String,
    /// `<node>:<boot id>`: a restarted instance with the same tag is another owner.
    me: String,
    node: NodeTag,
    /// How long a record lives without being refreshed.
    ttl: Duration,
    /// How many events a session's journal keeps (about: Redis trims in whole nodes).
    journal_events: usize,
    claim: Script,
    release: Script,
    append: Script,
    renew_node: Script,
}

impl Store {
    /// Connects to the store at `url` as node `node`, its keys under `prefix` (failing after a
    /// short deadline); records live `ttl` past their last refresh, and journals keep about
    /// `journal_events` events.
    pub(crate) async fn connect(
        url: &str,
        node: NodeTag,
        prefix: &str,
        ttl: Duration,
        journal_events: usize,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let settings = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_DEADLINE))
            .set_response_timeout(Some(COMMAND_DEADLINE))
            .set_number_of_retries(2);
        let connection = deadline(ConnectionManager::new_with_config(client, settings)).await?;
        // 64 random bits tell this run of the process from an earlier one with its tag.
        let boot = &SessionId::random().to_string()[..16];
        let store = Self {
            connection,
            prefix: prefix.to_owned(),
            me: format!("{node}:{boot}"),
            node,
            ttl: ttl.max(Duration::from_secs(1)),
            journal_events,
            claim: Script::new(CLAIM),
            release: Script::new(RELEASE),
            append: Script::new(APPEND),
            renew_node: Script::new(RENEW_NODE),
        };
        store.join().await?;
        Ok(store)
    }

    fn node_key(&self) -> String {
        format!("{}:node:{}", self.prefix, self.node)
    }

    /// Takes this instance's node key, refusing a tag another live instance uses. A key
    /// left by an earlier run of this instance (killed, so it did not leave) expires
    /// within [`NODE_TTL`]: wait that long once before refusing.
    async fn join(&self) -> Result<(), StoreError> {
        let key = self.node_key();
        let ttl = u64::try_from(NODE_TTL.as_millis()).unwrap_or(u64::MAX);
        for attempt in 0..2 {
            let mut connection = self.connection.clone();
            let mut set = redis::cmd("SET");
            set.arg(&key).arg(&self.me).arg("NX").arg("PX").arg(ttl);
            let taken: Option<String> = deadline(set.query_async(&mut connection)).await?;
            if taken.is_some() {
                return Ok(());
            }
            if attempt == 0 {
                let left: i64 = deadline(redis::cmd("PTTL").arg(&key).query_async(&mut connection)).await?;
                let left = Duration::from_millis(u64::try_from(left).unwrap_or(0).min(ttl));
                tracing::info!(node = %self.node, ?left, "the node key is held; waiting for it to expire once");
                tokio::time::sleep(left + Duration::from_millis(50)).await;
            }
        }
        Err(StoreError::NodeInUse(self.node))
    }

    /// Renews this instance's node key; `false` when another instance holds its tag.
    pub(crate) async fn renew_node(&self) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.renew_node.key(self.node_key());
        invocation.arg(&self.me).arg(u64::try_from(NODE_TTL.as_millis()).unwrap_or(u64::MAX));
        let renewed: i64 = deadline(invocation.invoke_async(&mut connection)).await?;
        Ok(renewed == 1)
    }

    /// Gives the node key back (at shutdown), if it is still this instance's.
    pub(crate) async fn leave(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let script = Script::new(LEAVE_NODE);
        let mut invocation = script.key(self.node_key());
        invocation.arg(&self.me);
        deadline(invocation.invoke_async::<i64>(&mut connection)).await.map(drop)
    }

    /// This instance's tag.
    pub(crate) fn node(&self) -> NodeTag {
        self.node
    }

    fn key(&self, id: SessionId) -> String {
        format!("{}:s:{{{id}}}", self.prefix)
    }

    /// The keys of a session's journal and of its pending requests.
    fn journal_keys(&self, id: SessionId) -> [String; 2] {
        let key = self.key(id);
        [format!("{key}:j"), format!("{key}:p")]
    }

    /// Appends each session's batch to its journal, if this instance still holds the
    /// session at the epoch given, in one pipeline of script calls (each for up to
    /// [`APPEND_SESSIONS`] sessions, each session fenced on its own): for each, in order,
    /// `false` when it is not held here any more (nothing of it was written).
    pub(crate) async fn append(&self, batches: &[JournalBatch]) -> Result<Vec<bool>, StoreError> {
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for chunk in batches.chunks(APPEND_SESSIONS) {
            self.append_call(&mut pipe, chunk);
        }
        let held: Vec<Vec<i64>> = match once_more(|| self.query(&pipe)).await {
            // The store forgot the script (it restarted): no call of the pipeline ran.
            Err(StoreError::Redis(e)) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                let mut connection = self.connection.clone();
                deadline(self.append.prepare_invoke().load_async(&mut connection)).await?;
                self.query(&pipe).await?
            }
            done => done?,
        };
        Ok(held.into_iter().flatten().map(|held| held == 1).collect())
    }

    async fn query<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        deadline(pipe.query_async(&mut connection)).await
    }

    /// Adds the script call that appends `batches` to `pipe` (by its digest: the payloads go
    /// once into the pipeline's command, with no invocation built in between).
    fn append_call(&self, pipe: &mut redis::Pipeline, batches: &[JournalBatch]) {
        let call = pipe.cmd("EVALSHA").arg(self.append.get_hash());
        let bound = self.journal_events.max(1);
        add_batches(call, batches, |batch| self.key(batch.id), &self.me, bound, self.ttl_ms());
    }

    /// What the journal of a session holds: its events, oldest first, and the requests
    /// still waiting for their answers.
    pub(crate) async fn history(&self, id: SessionId) -> Result<History, StoreError> {
        once_more(|| self.history_once(id)).await
    }

    async fn history_once(&self, id: SessionId) -> Result<History, StoreError> {
        let [journal, pending] = self.journal_keys(id);
        let mut pipe = redis::pipe();
        pipe.cmd("XRANGE").arg(&journal).arg("-").arg("+").cmd("HGETALL").arg(&pending);
        let mut connection = self.connection.clone();
        let (entries, waiting): (Vec<StreamEntry>, Vec<(String, u32)>) =
            deadline(pipe.query_async(&mut connection)).await?;
        // Numbers only grow along the journal (one holder at a time, each above the one
        // before): an entry that does not is a batch written twice (a retry after a timeout).
        let mut last = 0;
        let events = entries
            .into_iter()
            .filter_map(|(_, fields)| event_of(&fields))
            .filter(|(id, _)| {
                let fresh = id.seq > last;
                last = last.max(id.seq);
                fresh
            })
            .collect();
        let pending = waiting
            .into_iter()
            .filter_map(|(request, stream)| Some((serde_json::from_str(&request).ok()?, stream)))
            .collect();
        Ok(History { events, pending })
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// Writes the record of a session created here, at epoch 0, alone (the journal's writer
    /// writes it with the session's first batch).
    #[cfg(test)]
    pub(crate) async fn record(&self, id: SessionId, record: NewRecord) -> Result<(), StoreError> {
        self.append(&[JournalBatch { id, epoch: 0, entries: Vec::new(), create: Some(record) }]).await.map(drop)
    }

    /// Claims a session held elsewhere (or nowhere), if it is of `kind` and `owner`'s:
    /// `None` when there is no such session.
    pub(crate) async fn claim(
        &self,
        id: SessionId,
        kind: SessionKind,
        owner: Option<&Identity>,
    ) -> Result<Option<Claimed>, StoreError> {
        // Claiming twice leaves it claimed by this instance, one epoch further.
        once_more(|| self.claim_once(id, kind, owner)).await
    }

    async fn claim_once(
        &self,
        id: SessionId,
        kind: SessionKind,
        owner: Option<&Identity>,
    ) -> Result<Option<Claimed>, StoreError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.claim.key(self.key(id));
        invocation.arg(kind.as_str()).arg(credential(owner)).arg(&self.me).arg(self.ttl_ms());
        let claimed: Option<(u64, String, String)> = deadline(invocation.invoke_async(&mut connection)).await?;
        Ok(claimed.map(|(epoch, handshake, previous)| Claimed { epoch, handshake, previous }))
    }

    /// Deletes the record of a session that ended here, unless another instance claimed it
    /// since (`epoch` is this instance's generation of it).
    pub(crate) async fn release(&self, id: SessionId, epoch: u64) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let [journal, pending] = self.journal_keys(id);
        let mut invocation = self.release.key(self.key(id));
        invocation.key(journal).key(pending).arg(&self.me).arg(epoch);
        deadline(invocation.invoke_async::<i64>(&mut connection)).await.map(drop)
    }

    /// Of the sessions held here (with their epochs), those another instance has claimed
    /// since (or whose record is gone); the others' records are refreshed.
    pub(crate) async fn lost(&self, held: &[(SessionId, u64)]) -> Result<Vec<Lost>, StoreError> {
        let mut connection = self.connection.clone();
        if held.is_empty() {
            // Nothing to check, but whether the store answers.
            return deadline(redis::cmd("PING").query_async::<()>(&mut connection)).await.map(|()| Vec::new());
        }
        let mut pipe = redis::pipe();
        for (id, _) in held {
            pipe.cmd("HMGET").arg(self.key(*id)).arg("owner").arg("epoch");
        }
        let owners: Vec<(Option<String>, Option<u64>)> = deadline(pipe.query_async(&mut connection)).await?;
        let mut lost = Vec::new();
        let mut refresh = redis::pipe();
        for ((id, epoch), (owner, current)) in held.iter().zip(owners) {
            if owner.as_deref() == Some(self.me.as_str()) && current == Some(*epoch) {
                let ttl = i64::try_from(self.ttl_ms()).unwrap_or(i64::MAX);
                refresh.pexpire(self.key(*id), ttl).ignore();
                for key in self.journal_keys(*id) {
                    refresh.pexpire(key, ttl).ignore();
                }
            } else {
                let taker = owner.as_deref().and_then(|o| o.split(':').next()).and_then(|tag| tag.parse().ok());
                lost.push(Lost { id: *id, taker });
            }
        }
        // Redis refuses an empty pipeline.
        if lost.len() < held.len() {
            deadline(refresh.query_async::<()>(&mut connection)).await?;
        }
        Ok(lost)
    }
}

/// An entry of a Redis Stream as `XRANGE` gives it: its id, and its fields and values.
type StreamEntry = (String, Vec<Vec<u8>>);

/// An event of the journal from its fields (`st`, `sq`, `d`, in any order).
fn event_of(fields: &[Vec<u8>]) -> Option<(EventId, Bytes)> {
    let (mut stream, mut seq, mut json) = (None, None, None);
    for pair in fields.chunks_exact(2) {
        let value = &pair[1];
        match pair[0].as_slice() {
            b"st" => stream = std::str::from_utf8(value).ok()?.parse().ok(),
            b"sq" => seq = std::str::from_utf8(value).ok()?.parse().ok(),
            b"d" => json = Some(Bytes::copy_from_slice(value)),
            _ => {}
        }
    }
    Some((EventId { stream: stream?, seq: seq? }, json?))
}

/// Whom a session is bound to, as the record keeps it: never a token, and a JWT subject
/// only as a digest.
fn credential(owner: Option<&Identity>) -> String {
    match owner.map(Identity::principal) {
        None => "-".to_owned(),
        Some(Principal::Token(digest)) => {
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("t:{hex}")
        }
        Some(Principal::Subject { issuer, subject }) => format!("s:{}", digest_hex(&format!("{issuer}\n{subject}"))),
    }
}

/// Runs `step` a second time when the first found the connection broken, so the command
/// never reached the store: after the store restarted, the first command fails on the old
/// connection while the connection manager opens a new one.
async fn once_more<T, F, Fut>(mut step: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    match step().await {
        Err(StoreError::Redis(e)) if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() => {
            tracing::debug!(error = %e, "the store's connection broke; once more on a new one");
            step().await
        }
        done => done,
    }
}

async fn deadline<T>(work: impl Future<Output = redis::RedisResult<T>>) -> Result<T, StoreError> {
    match tokio::time::timeout(COMMAND_DEADLINE, work).await {
        Ok(result) => result.map_err(StoreError::from),
        Err(_) => Err(StoreError::Timeout(COMMAND_DEADLINE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgw_transport::SessionKind;
    use rmcp::model::RequestId;

    /// A `redis-server` of the test's own on a unix socket, keeping nothing; stopped on drop.
    struct Redis {
        child: std::process::Child,
        dir: std::path::PathBuf,
    }

    impl Drop for Redis {
        fn drop(&mut self) {
            drop(self.child.kill());
            drop(self.child.wait());
            drop(std::fs::remove_dir_all(&self.dir));
        }
    }

    impl Redis {
        /// Fails when redis-server is missing (`make deps-cluster` installs it).
        async fn start() -> Self {
            let dir = std::env::temp_dir().join(format!("mcpgw-store-{}", SessionId::random()));
            std::fs::create_dir_all(&dir).expect("a scratch directory");
            let child = std::process::Command::new("redis-server")
                .args(["--port", "0", "--unixsocket", "r.sock", "--save", "", "--appendonly", "no", "--dir"])
                .arg(&dir)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("redis-server (make deps-cluster installs it)");
            let redis = Self { child, dir };
            let socket = redis.dir.join("r.sock");
            let ready = async {
                while tokio::net::UnixStream::connect(&socket).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(10), ready).await.expect("redis-server listens");
            redis
        }

        async fn store(&self, node: &str) -> Store {
            let url = format!("unix://{}", self.dir.join("r.sock").display());
            let node = node.parse().expect("a tag");
            Store::connect(&url, node, "test", Duration::from_secs(60), 100).await.expect("connected")
        }
    }

    fn events(seqs: &[u64]) -> Vec<JournalEntry> {
        seqs.iter()
            .map(|&seq| JournalEntry::Event {
                id: EventId { stream: 0, seq },
                json: Bytes::from(format!("{{\"n\":{seq}}}")),
                answers: None,
            })
            .collect()
    }

    fn new_record() -> NewRecord {
        NewRecord::new(SessionKind::Streamable, None, "{}".into())
    }

    async fn seqs(store: &Store, id: SessionId) -> Vec<u64> {
        store.history(id).await.expect("history").events.iter().map(|(id, _)| id.seq).collect()
    }

    #[tokio::test]
    async fn many_sessions_batches_go_in_one_write_in_order_and_a_lost_session_is_refused_alone() {
        let redis = Redis::start().await;
        let (here, there) = (redis.store("0001").await, redis.store("0002").await);
        let ids: Vec<SessionId> = (0..3).map(|_| SessionId::random_on(here.node())).collect();
        for id in &ids {
            here.record(*id, new_record()).await.expect("recorded");
        }
        let taken = there.claim(ids[1], SessionKind::Streamable, None).await.expect("claim").expect("claimed");
        assert_eq!(taken.epoch, 1);
        let batches = |first: u64| {
            ids.iter()
                .zip([2, 1, 3])
                .map(|(id, n)| JournalBatch {
                    id: *id,
                    epoch: 0,
                    entries: events(&(first..first + n).collect::<Vec<_>>()),
                    create: None,
                })
                .collect::<Vec<_>>()
        };
        let held = here.append(&batches(1)).await.expect("written");
        assert_eq!(held, [true, false, true], "only the session taken over is refused");
        // The store forgot its scripts (as after a restart): the next write loads it again.
        let mut connection = here.connection.clone();
        redis::cmd("SCRIPT").arg("FLUSH").query_async::<()>(&mut connection).await.expect("flushed");
        assert_eq!(here.append(&batches(10)).await.expect("written"), [true, false, true]);
        assert_eq!(seqs(&here, ids[0]).await, [1, 2, 10, 11]);
        assert_eq!(seqs(&here, ids[1]).await, Vec::<u64>::new(), "nothing written for the session lost");
        assert_eq!(seqs(&here, ids[2]).await, [1, 2, 3, 10, 11, 12]);
    }

    #[tokio::test]
    async fn a_record_goes_in_the_same_call_as_its_first_batch_and_can_be_taken_over() {
        let redis = Redis::start().await;
        let (here, there) = (redis.store("0001").await, redis.store("0002").await);
        let (new, unknown) = (SessionId::random_on(here.node()), SessionId::random_on(here.node()));
        let record = NewRecord::new(SessionKind::Legacy, None, r#"{"hs":1}"#.into());
        let batches = [
            JournalBatch { id: new, epoch: 0, entries: events(&[1, 2]), create: Some(record) },
            JournalBatch { id: unknown, epoch: 0, entries: events(&[1]), create: None },
        ];
        let held = here.append(&batches).await.expect("written");
        assert_eq!(
            held,
            [true, false],
            "the new record is written before its batch; a session never recorded is not held"
        );
        assert_eq!(seqs(&here, new).await, [1, 2]);
        assert_eq!(seqs(&here, unknown).await, Vec::<u64>::new());
        assert!(there.claim(new, SessionKind::Streamable, None).await.expect("claim").is_none(), "of its kind only");
        let taken = there.claim(new, SessionKind::Legacy, None).await.expect("claim").expect("claimed");
        assert_eq!((taken.epoch, taken.handshake.as_str()), (1, r#"{"hs":1}"#));
        assert!(taken.previous.starts_with("0001:"), "{}", taken.previous);
    }

    #[tokio::test]
    async fn a_round_of_more_sessions_than_one_call_takes_is_cut_into_calls_answered_in_order() {
        let redis = Redis::start().await;
        let (here, there) = (redis.store("0001").await, redis.store("0002").await);
        let ids: Vec<SessionId> = (0..APPEND_SESSIONS + 3).map(|_| SessionId::random_on(here.node())).collect();
        for id in &ids {
            here.record(*id, new_record()).await.expect("recorded");
        }
        // One lost in the first call, one in the second.
        for lost in [ids[1], ids[APPEND_SESSIONS + 1]] {
            there.claim(lost, SessionKind::Streamable, None).await.expect("claim").expect("claimed");
        }
        let batches: Vec<JournalBatch> =
            ids.iter().map(|id| JournalBatch { id: *id, epoch: 0, entries: events(&[1]), create: None }).collect();
        let held = here.append(&batches).await.expect("written");
        let expected: Vec<bool> = (0..ids.len()).map(|n| n != 1 && n != APPEND_SESSIONS + 1).collect();
        assert_eq!(held, expected);
        assert_eq!(seqs(&here, ids[APPEND_SESSIONS + 2]).await, [1], "the second call wrote its sessions");
    }

    #[tokio::test]
    async fn a_request_answered_in_the_batch_that_made_it_pending_is_never_pending_in_the_store() {
        let redis = Redis::start().await;
        let here = redis.store("0001").await;
        let id = SessionId::random_on(here.node());
        here.record(id, new_record()).await.expect("recorded");
        let pending = |n| JournalEntry::Pending { stream: 1, requests: vec![RequestId::Number(n)] };
        let answer = |seq, n| JournalEntry::Event {
            id: EventId { stream: 1, seq },
            json: Bytes::from_static(b"{}"),
            answers: Some(RequestId::Number(n)),
        };
        let batch = |entries| [JournalBatch { id, epoch: 0, entries, create: None }];
        assert_eq!(here.append(&batch(vec![pending(1), pending(2), answer(3, 1)])).await.expect("written"), [true]);
        let history = here.history(id).await.expect("history");
        assert_eq!(history.pending, [(RequestId::Number(2), 1)], "only the request not answered yet");
        assert_eq!(history.events.len(), 1);
        assert_eq!(here.append(&batch(vec![answer(4, 2)])).await.expect("written"), [true]);
        assert!(here.history(id).await.expect("history").pending.is_empty(), "answered in a later batch");
    }
}
