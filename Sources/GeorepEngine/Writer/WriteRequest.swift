public import GeorepLog
public import GeorepModel

/// A write a client asks a region's node for: one operation on one row (`docs/http-api.md#writes`).
public struct WriteRequest: Sendable, Hashable {
    /// What to do to the row.
    public enum Operation: Sendable, Hashable {
        /// Set scalar columns (`PUT`).
        case upsert([String: JSONValue])
        /// Delete the row, leaving a tombstone (`DELETE`).
        case delete
        /// Add elements to set columns (`POST …/add`).
        case add([String: [JSONValue]])
        /// Remove elements from OR-Set columns (`POST …/remove`).
        case remove([String: [JSONValue]])
        /// Add deltas, negative to decrement, to counter columns (`POST …/increment`).
        case increment([String: Int64])
    }

    /// The application table.
    public var table: String
    /// The row's key columns and values.
    public var key: [String: JSONValue]
    /// The operation.
    public var operation: Operation

    /// Makes a request.
    public init(table: String, key: [String: JSONValue], operation: Operation) {
        self.table = table
        self.key = key
        self.operation = operation
    }
}

/// What an acknowledged write returns.
public struct WriteReceipt: Sendable, Hashable {
    /// The read-your-writes token.
    public var token: WriteToken
    /// Where the event is in the log: its topic (the change topic, or the pinned topic for a
    /// region-pinned table), partition and offset.
    public var position: SourcePosition
    /// The event that was published and applied locally.
    public var event: ChangeEvent
}

/// Why a write was refused or failed. A refused write (every case but
/// ``notAcknowledged(_:)``, ``store(_:)`` and ``fenced(_:)``) published and stored nothing.
public enum WriteError: Error, Sendable, CustomStringConvertible {
    /// The table is not in the configuration.
    case unknownTable(String)
    /// The request names no column (an upsert, add, remove or increment of nothing).
    case emptyRequest(table: String, operation: String)
    /// The key, a column or a value does not fit the table.
    case rejected(EventRejection)
    /// A region-pinned row belongs to another region, whose node must take the write.
    case pinnedElsewhere(table: String, homeRegion: String)
    /// The write names another `home_region` for a region-pinned row, which never moves.
    case homeRegionFixed(table: String, homeRegion: String)
    /// The event is larger than Kafka takes in one record; retrying cannot help.
    case tooLarge(String)
    /// Kafka did not acknowledge the event: the write did not happen (or its fate is unknown
    /// after a time-out; a retry is safe because merges are idempotent).
    case notAcknowledged(KafkaErrorDescription)
    /// The local store failed while reading the row; nothing was published.
    case store(String)
    /// The local store does not hold the region's own earlier writes yet (after a restart, or
    /// a failed local apply of this row): an event built now could undo one. Nothing was
    /// published; a retry succeeds once the applier has caught up.
    case catchingUp(String)
    /// The node stopped taking writes of replicated tables (a failover gave the primary role
    /// to another region, or it never had it); nothing was published.
    case notAccepting(region: String, epoch: UInt64)
    /// Kafka has the event, but past a fence point of a failover: every region refuses it to
    /// its dead-letter topic (refused, not lost) and the write did not take effect.
    case fenced(String)
    /// A new region-pinned row's home is not known yet (``PinnedHomes``): nothing was written; retry.
    case directoryUnavailable(String)
    /// This node's clock is too far from the other regions' (``ClockGuard``), or behind the
    /// HLCs it has seen: nothing was written; another region's node can take the write.
    case clockUnsafe(String)

    /// A human-readable reason naming the problem.
    public var description: String {
        switch self {
        case let .unknownTable(table): "unknown table \(table)"
        case let .emptyRequest(table, operation): "\(operation) on table \(table) names no column"
        case let .rejected(rejection): rejection.description
        case let .pinnedElsewhere(table, home): "this row of region-pinned table \(table) lives in region \(home); write it there"
        case let .homeRegionFixed(table, home): "home_region of a row of region-pinned table \(table) cannot change: the row lives in region \(home)"
        case let .tooLarge(problem): problem
        case let .notAcknowledged(error): "Kafka did not acknowledge the write: \(error.message)"
        case let .store(problem): "the local store failed: \(problem)"
        case let .catchingUp(problem): problem
        case let .notAccepting(region, epoch): "region \(region) does not accept writes of replicated tables at epoch \(epoch)"
        case let .fenced(reason): "the write was refused: \(reason)"
        case let .directoryUnavailable(problem): problem
        case let .clockUnsafe(problem): "this node takes no writes while its clock is unsafe: \(problem)"
        }
    }
}

/// A Kafka error's text, kept by ``WriteError`` so that its users need not import GeorepKafka.
public struct KafkaErrorDescription: Sendable, Hashable {
    /// The error's message and code name.
    public var message: String
    /// Whether retrying may succeed.
    public var isRetriable: Bool

    /// Makes a description.
    public init(message: String, isRetriable: Bool) {
        self.message = message
        self.isRetriable = isRetriable
    }
}
