public import GeorepLog
import Foundation
public import GeorepModel

/// A change event to apply, with the position it was consumed from (nil for a local event
/// applied before it was consumed).
public struct SourcedEvent: Sendable, Hashable {
    /// The event, decoded and validated.
    public var event: ChangeEvent
    /// Where it was consumed from.
    public var source: SourcePosition?
    /// Whether `event` was already validated (and normalized) against the store's configuration,
    /// as the applier's decoder and the writer do; the store then does not check it again.
    /// Events that are not marked are checked, and refused with the reason when invalid.
    public var isValidated: Bool

    /// Pairs an event with its source.
    public init(_ event: ChangeEvent, source: SourcePosition? = nil, isValidated: Bool = false) {
        self.event = event
        self.source = source
        self.isValidated = isValidated
    }
}

/// An event of a batch that could not be applied; the rest of the batch was.
public struct EventFailure: Sendable, Hashable, CustomStringConvertible {
    /// Its index in the batch.
    public var index: Int
    /// Where it was consumed from.
    public var source: SourcePosition?
    /// Why it failed (names the table or constraint, never row values).
    public var reason: String

    /// Makes a failure.
    public init(index: Int, source: SourcePosition?, reason: String) {
        self.index = index
        self.source = source
        self.reason = reason
    }

    /// `source: reason`.
    public var description: String { "\(source.map(\.description) ?? "local event #\(index)"): \(reason)" }
}

/// What applying a batch did.
public struct BatchOutcome: Sendable, Hashable {
    /// Events whose merge changed a row.
    public var changed: Int = 0
    /// Events applied without change (duplicates, superseded writes).
    public var unchanged: Int = 0
    /// Events skipped because their offset is below the stored position (already applied).
    public var skipped: Int = 0
    /// Events that failed; each with a source position is also kept in the store's
    /// dead-letter outbox (one without, a writer's local apply, is left to the applier, which
    /// reads it from the log).
    public var failures: [EventFailure] = []
    /// Conflicts detected by this batch.
    public var conflicts: [Conflict] = []
    /// The positions stored by this batch: next offset to consume per topic partition.
    public var positions: [TopicPartition: Int64] = [:]

    /// An empty outcome.
    public init() {}
}

/// A recorded conflict, as stored in `georep_conflicts`.
public struct ConflictRecord: Sendable, Hashable {
    /// Its row id.
    public var id: Int64
    /// The conflict.
    public var conflict: Conflict
}

/// An event that failed to apply, kept in the store until the applier has produced it to the
/// dead-letter topic (an outbox written in the batch's own transaction, so none is lost).
public struct DeadLetter: Sendable, Hashable {
    /// Its row id, to remove it once produced.
    public var id: Int64
    /// Where the event was consumed from.
    public var source: SourcePosition?
    /// Why it failed: the `georep-error` header.
    public var reason: String
    /// The event's JSON bytes.
    public var payload: [UInt8]
}

/// What the applier and the writer need of a store: apply batches of events with their
/// source positions in one transaction, and the positions and clock floor that come with them.
public protocol EventStore: Sendable {
    /// Applies a batch in one transaction together with the batch's next positions.
    ///
    /// An event that fails is reported in the outcome and, when it has a source position, kept
    /// as a dead letter; the others apply. `consumed` names further positions that were
    /// consumed without an event (records the caller could not decode and dead-lettered
    /// itself): their partitions' positions advance past them in the same transaction. Throws only when the transaction itself
    /// fails, in which case nothing (rows, positions, dead letters) was stored.
    func apply(batch: [SourcedEvent], consumed: [SourcePosition]) async throws -> BatchOutcome

    /// The stored positions: the next offset to consume per source topic partition.
    func positions() async throws -> [TopicPartition: Int64]

    /// The highest HLC applied or recorded: the floor of the region's clock after a restart.
    func highWaterMark() async throws -> HLCTimestamp

    /// Raises the stored high-water mark to at least `timestamp` (e.g. for HLCs the writer issued).
    func recordHighWaterMark(_ timestamp: HLCTimestamp) async throws
}

/// Reads of the merged rows: what the HTTP API, the writer (a row's merge state) and the
/// benchmarks need.
public protocol RowReader: Sendable {
    /// The visible row, or nil when it is absent or deleted.
    func row(table: String, key: [String: JSONValue]) async throws -> [String: JSONValue]?

    /// The row's merge state, for a writer to build its next event from.
    func rowState(table: String, key: [String: JSONValue]) async throws -> RowState

    /// Every visible row of a table, in key order.
    func snapshot(table: String) async throws -> [[String: JSONValue]]

    /// The number of recorded conflicts.
    func conflictCount() async throws -> Int

    /// The most recent recorded conflicts, newest first.
    func conflicts(limit: Int) async throws -> [ConflictRecord]
}

/// Dead letters kept in the store until they are published to the dead-letter topic.
public protocol DeadLetterStore: Sendable {
    /// Claims up to `limit` dead letters not yet produced to the dead-letter topic, oldest
    /// first, for `lease`: until the lease ends, no other claim returns them, whether it comes
    /// from another consumer of this process or from another process sharing the store. The
    /// claimer produces them, then removes them; the letters of a claimer that failed or
    /// stopped are claimed again once its lease has ended.
    func claimDeadLetters(limit: Int, lease: Duration) async throws -> [DeadLetter]

    /// Forgets dead letters that were produced.
    func removeDeadLetters(ids: [Int64]) async throws
}

/// The homes of region-pinned rows (`georep_pinned_directory`).
public protocol PinnedDirectory: Sendable {
    /// The home region of a pinned row, from the directory.
    func pinnedHome(table: String, key: [String: JSONValue]) async throws -> String?

    /// Records a pinned row's home region in the directory, unless it names one already (the
    /// first claim wins; `locate` events of a batch are recorded the same way).
    func recordPinnedHome(table: String, key: [String: JSONValue], region: String) async throws
}

/// The region tables `georep_region_config` and `georep_replication_status`.
public protocol RegionRecordStore: Sendable {
    /// Inserts or replaces regions' rows of `georep_region_config`.
    func saveRegionConfigs(_ records: [RegionConfigRecord]) async throws

    /// The rows of `georep_region_config`, by region id.
    func regionConfigs() async throws -> [RegionConfigRecord]

    /// Inserts or replaces rows of `georep_replication_status`.
    func saveReplicationStatus(_ records: [ReplicationStatusRecord]) async throws

    /// The rows of `georep_replication_status`, by source then target region.
    func replicationStatus() async throws -> [ReplicationStatusRecord]
}

/// The local store of a region, in every role: it applies batches of events and their source
/// positions in one transaction, and serves the merged rows.
///
/// SQLite (`SQLiteStore`) is the embedded implementation, PostgreSQL (`PostgresStore`) the
/// production one; `makeReplicaStore(at:config:logger:)` opens either. Callers that need one
/// role take that role's protocol.
public protocol ReplicaStore: EventStore, RowReader, DeadLetterStore, PinnedDirectory, RegionRecordStore {
    /// Closes the store (its file or its connections); it cannot be used afterwards.
    func close() async throws
}

extension EventStore {
    /// Applies a batch in one transaction together with the batch's next positions; see
    /// ``apply(batch:consumed:)``.
    public func apply(batch: [SourcedEvent]) async throws -> BatchOutcome {
        try await apply(batch: batch, consumed: [])
    }
}
