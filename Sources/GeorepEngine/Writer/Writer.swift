public import GeorepLog
import Foundation
public import GeorepKafka
public import GeorepModel
import GeorepStore
import Logging
import Synchronization

/// Turns client requests into change events of one region and publishes them
/// (`docs/operations.md#guarantees`, `docs/operations.md#fencing-and-epochs`).
///
/// For each request the writer builds the event from the row's local state with a fresh HLC
/// of the node's clock and its epoch, publishes it to the region's topic (key
/// `<table>/<key>`, headers `georep-hlc` and `georep-origin`), waits for Kafka's
/// acknowledgement, and only then applies it to the local store and returns its token.
///
/// Requests on the same row are serialized inside the writer, so that each event is built
/// from a state that already holds the previous one (two increments built from one state
/// would carry the same running totals and one would be lost).
///
/// The local apply stores the event without a source position: the store's positions only
/// ever advance in log order, through the ``Applier``, so that an event written to the same
/// partition by another producer just before this one is never skipped. When the applier
/// reaches the event in the log, it only stores its position (see ``LocalApplyLedger``; without
/// the ledger it applies the event again, which changes nothing: every merge is idempotent).
/// An event the applier has already committed is not applied locally.
///
/// An event is only built on a local state that holds the region's own earlier events (see
/// ``UnstoredWrites``): after a restart the writer waits until the store holds its region's log
/// up to its end at start (``catchUp(toOwnLogEnds:)``), and a row whose local apply failed waits
/// for the applier to store that event.
///
/// Events of replicated tables carry the writer's epoch, the fencing token of a failover: the
/// epoch and whether the node takes such writes (``updateRole(epoch:acceptsWrites:)``) are read
/// together when an event is built, and an acknowledged event past a fence point (``FenceRegistry``)
/// is not applied locally, as every region refuses it.
///
/// A ``RegionEngine`` makes a region's writer, wired to its applier.
///
/// - Important: Several writers for one region must not share a counter slot; give each
///   process of a region its own writer id (``RegionEngine/Settings/writerID``).
public final class Writer: Sendable {
    /// The region whose topic this writer publishes to.
    public let region: String
    private let config: GeorepConfig
    private let store: any ReplicaStore
    let clock: HybridLogicalClock
    private let producer: KafkaProducer
    let writerID: String?
    private let role: Mutex<(epoch: UInt64, acceptsWrites: Bool)>
    /// Writes of replicated tables between building their event and returning.
    private let writesInFlight = Condition(0)
    private let unstored: UnstoredWrites
    private let fences: FenceRegistry?
    private let rows = KeyedSerializer()
    private let published = Mutex<[TopicPartition: Int64]>([:])
    private let localApplies: LocalApplyQueue
    private let localApplyLedger: LocalApplyLedger?
    private let clockGuard: ClockGuard?
    private let logger: Logger

    /// Makes a writer of `region` publishing through `producer` (connected to that region's
    /// cluster; the caller closes it after the last write).
    ///
    /// - Parameters:
    ///   - clock: the node's clock, shared with its ``Applier``.
    ///   - epoch: the writer epoch stamped on every event (the fencing token).
    ///   - acceptsWrites: whether it takes writes of replicated tables (region-pinned rows are
    ///     written in their home region whatever the topology).
    ///   - writerID: the counter slot; nil for the region's own slot (one writer per region).
    ///   - localApplyLedger: shared with the node's applier (``Applier/Settings/localApplyLedger``)
    ///     so that each of the region's events is merged into the store once; nil: twice.
    ///   - fences: the fence points the node's applier enforces; nil for none.
    ///   - storeProgress: tells when the store holds an event of the region's own log (the applier's progress).
    ///   - catchesUpAtStart: writes wait until ``catchUp(toOwnLogEnds:)`` is told the ends of the
    ///     region's own topics and the store holds them (a node's restart); false: they do not.
    ///   - clockGuard: refuses writes while the node's clock is too far from the other regions'; nil: never.
    init(
        region: String, config: GeorepConfig, store: any ReplicaStore, clock: HybridLogicalClock,
        producer: KafkaProducer, epoch: UInt64, acceptsWrites: Bool = true, writerID: String? = nil,
        localApplyLedger: LocalApplyLedger? = nil, fences: FenceRegistry? = nil, storeProgress: any StoreProgress,
        catchesUpAtStart: Bool = false, clockGuard: ClockGuard? = nil, logger: Logger
    ) {
        self.region = region
        self.config = config
        self.store = store
        self.clock = clock
        self.producer = producer
        self.writerID = writerID
        self.role = Mutex((epoch, acceptsWrites))
        self.localApplies = LocalApplyQueue(store: store, logger: logger)
        self.localApplyLedger = localApplyLedger
        self.unstored = UnstoredWrites(progress: storeProgress, catchesUpAtStart: catchesUpAtStart)
        self.fences = fences
        self.clockGuard = clockGuard
        self.logger = logger
    }

    /// How long a write waits for the store to hold the region's own earlier events before it
    /// is refused with ``WriteError/catchingUp(_:)``.
    public static let catchUpTimeout = Duration.seconds(10)

    /// The epoch stamped on new events.
    public var epoch: UInt64 { role.withLock { $0.epoch } }

    /// Replaces the epoch stamped on new events and whether writes of replicated tables are
    /// taken; a write whose event is built afterwards sees both.
    public func updateRole(epoch: UInt64, acceptsWrites: Bool) {
        role.withLock { $0 = (epoch, acceptsWrites) }
    }

    /// Tells a writer made with `catchesUpAtStart` the ends of its region's own topics at start.
    public func catchUp(toOwnLogEnds ends: [TopicPartition: Int64]) {
        unstored.setStartEnds(ends)
    }

    /// Whether the local store may miss the region's own event at `position`: Kafka acknowledged
    /// it, but its local apply failed, or the node restarted before it and has not caught up.
    public func mayMissOwnEvent(at position: SourcePosition) -> Bool {
        unstored.mayMiss(position)
    }

    /// Returns once no write of a replicated table is between building its event and returning,
    /// or after `timeout` (returning false).
    public func waitForWritesInFlight(timeout: Duration) async -> Bool {
        await writesInFlight.wait(until: { $0 == 0 }, timeout: timeout)
    }

    /// Publishes the event for `request`, waits for Kafka's acknowledgement, applies it
    /// locally and returns its receipt.
    ///
    /// - Throws: ``WriteError`` naming the problem; a refused request writes nothing.
    public func write(_ request: WriteRequest) async throws(WriteError) -> WriteReceipt {
        // At once: a node whose clock is off waits for nothing (its catch-up may be slow too).
        if let refusal = clockGuard?.refusal { throw .clockUnsafe(refusal) }
        guard let table = config.table(named: request.table) else { throw .unknownTable(request.table) }
        try Self.checkNotEmpty(request, table: table.name)
        do {
            try table.checkKey(request.key)
        } catch {
            throw .rejected(error)
        }
        let key = table.kafkaKey(for: request.key)
        return try await rows.withKey(key) { () throws(WriteError) in
            try await writeSerialized(request, table: table, key: key)
        }
    }

    private func writeSerialized(_ request: WriteRequest, table: TableSchema, key: String) async throws(WriteError) -> WriteReceipt {
        try await unstored.waitUntilStored(key: key, region: region, timeout: Self.catchUpTimeout)
        let row: RowState
        do {
            row = Self.needsRowState(request, table: table)
                ? try await store.rowState(table: table.name, key: request.key)
                : RowState(table: table, key: request.key)
        } catch let rejection as EventRejection {
            throw .rejected(rejection)
        } catch {
            throw .store(String(describing: error))
        }
        let isReplicated = table.merge != .pinned
        if isReplicated { writesInFlight.update { $0 += 1 } }
        defer { if isReplicated { writesInFlight.update { $0 -= 1 } } }
        let event = try makeEvent(request, row: row, isReplicated: isReplicated)
        let topic = isReplicated ? Topics.changes(region) : Topics.pinned(region)
        let report = try await publish(event, table: table, to: topic)
        guard report.offset >= 0 else {
            // Delivered, says librdkafka, but not where: a retried batch the broker answered as
            // a duplicate (the development broker does so even when it never stored the first
            // try). Whether the event is in the log is not known: the write is not acknowledged,
            // and the row's next event waits for what the log holds up to here.
            let partition = TopicPartition(topic: topic, partition: report.partition)
            unstored.localApplyFailed(key: key, at: SourcePosition(
                topic: topic, partition: report.partition, offset: (lastPublishedOffset(partition) ?? -1) + 1))
            logger.warning("Kafka acknowledged an event without its offset; answered as not acknowledged", metadata: ["partition": "\(partition)"])
            throw .notAcknowledged(KafkaErrorDescription(
                message: "the event was reported delivered without its place in the log, so whether it took effect is not known; retry", isRetriable: true))
        }
        let position = SourcePosition(topic: topic, partition: report.partition, offset: report.offset)
        if let refusal = fences?.refusal(of: event, at: position) {
            // Every region's applier, this one's included, refuses it to the dead-letter topic.
            logger.warning("an acknowledged write is past a fence point; not applied", metadata: ["position": "\(position)", "reason": .string(refusal)])
            throw .fenced(refusal)
        }
        if localApplyLedger?.isAppliedByApplier(position) != true {
            if await localApplies.apply(event) {
                localApplyLedger?.writerApplied(position, hlc: event.hlc)
            } else {
                unstored.localApplyFailed(key: key, at: position)
            }
        }
        return WriteReceipt(
            token: WriteToken(region: region, partition: report.partition, offset: report.offset), position: position, event: event)
    }

    /// Publishes `event` to `topic` (key `<table>/<key>`, headers `georep-hlc` and
    /// `georep-origin`) and waits for Kafka's acknowledgement, without applying it locally:
    /// what an application's own producer does (the applier applies it from the log).
    public func publish(_ event: ChangeEvent, table: TableSchema, to topic: String) async throws(WriteError) -> KafkaDeliveryReport {
        let report = try await Self.send(event, table: table, to: topic, through: producer)
        let partition = TopicPartition(topic: topic, partition: report.partition)
        published.withLock { $0[partition] = max($0[partition] ?? -1, report.offset) }
        return report
    }

    /// Sends `event` to `topic` through `producer` as every georep writer does (key
    /// `<table>/<key>`, headers `georep-hlc` and `georep-origin`) and waits for Kafka's
    /// acknowledgement.
    static func send(
        _ event: ChangeEvent, table: TableSchema, to topic: String, partition: Int32? = nil, through producer: KafkaProducer
    ) async throws(WriteError) -> KafkaDeliveryReport {
        let record = KafkaRecord(
            topic: topic, partition: partition, key: table.kafkaKey(for: event.key), value: event.encodedJSON(),
            headers: [KafkaHeader(name: GeorepHeader.hlc, string: event.hlc.description),
                      KafkaHeader(name: GeorepHeader.origin, string: event.origin)])
        let report: KafkaDeliveryReport
        do {
            report = try await producer.send(record)
        } catch {
            throw failure(error, record: record)
        }
        if let error = report.error { throw failure(error, record: record) }
        return report
    }

    private static func failure(_ error: KafkaError, record: KafkaRecord) -> WriteError {
        if error.code == .messageTooLarge {
            return .tooLarge("the event is \((record.key?.count ?? 0) + (record.value?.count ?? 0)) bytes, more than Kafka takes in one record (message.max.bytes)")
        }
        return .notAcknowledged(KafkaErrorDescription(message: error.description, isRetriable: error.isRetriable))
    }

    /// The highest offset this writer has published to `partition`, noted as soon as Kafka
    /// acknowledged it, before the write is applied to the local store: a read that sees a local
    /// write is never described by a lower position.
    public func lastPublishedOffset(_ partition: TopicPartition) -> Int64? {
        published.withLock { $0[partition] }
    }

    /// Whether building the event for `request` reads the row's current state: not for an
    /// upsert that replaces every scalar column of an `lww` row, nor for any `lww-columns`
    /// upsert (their events carry only the named columns either way).
    private static func needsRowState(_ request: WriteRequest, table: TableSchema) -> Bool {
        guard case let .upsert(columns) = request.operation else { return true }
        switch table.merge {
        case .lwwColumns: return false
        case .lww: return !table.valueColumns.allSatisfy { columns[$0.name] != nil }
        case .pinned: return true
        }
    }

    private static func checkNotEmpty(_ request: WriteRequest, table: String) throws(WriteError) {
        let (isEmpty, name): (Bool, String) = switch request.operation {
        case let .upsert(columns): (columns.isEmpty, "upsert")
        case .delete: (false, "delete")
        case let .add(elements): (elements.isEmpty, "add")
        case let .remove(elements): (elements.isEmpty, "remove")
        case let .increment(deltas): (deltas.isEmpty, "increment")
        }
        if isEmpty { throw .emptyRequest(table: table, operation: name) }
    }

    /// Builds the validated event for `request` from the row's current state.
    private func makeEvent(_ request: WriteRequest, row: RowState, isReplicated: Bool) throws(WriteError) -> ChangeEvent {
        var operation = request.operation
        if row.table.merge == .pinned { operation = try pinToThisRegion(operation, row: row) }
        let (epoch, acceptsWrites) = role.withLock { $0 }
        if isReplicated, !acceptsWrites { throw .notAccepting(region: region, epoch: epoch) }
        if let refusal = clockGuard?.refusal { throw .clockUnsafe(refusal) }
        let hlc = clock.now()
        // Every region refuses an event whose HLC is further ahead of its record's timestamp
        // (this node's wall clock when it sends) than the max offset: never acknowledge one.
        let lead = hlc.millis > clock.wallMillis() ? hlc.millis - clock.wallMillis() : 0
        if lead > config.hlcMaxOffsetMillis {
            throw .clockUnsafe("this node's clock is \(lead) ms behind the HLC it has seen (max offset \(config.hlcMaxOffsetMillis) ms): every region would refuse an event stamped now")
        }
        let context = WriteContext(origin: region, hlc: hlc, epoch: epoch, writer: writerID)
        do {
            switch operation {
            case let .upsert(columns): return try row.makeUpsert(columns, context: context)
            case .delete: return row.makeDelete(context: context)
            case let .add(elements): return try row.makeAdd(elements, context: context)
            case let .remove(elements): return try row.makeRemove(elements, context: context)
            case let .increment(deltas): return try row.makeIncrement(deltas, context: context)
            }
        } catch {
            throw .rejected(error)
        }
    }

    /// A pinned row lives in the region that first wrote it: its `home_region` column names it.
    /// Refuses a write that moves the row, and fills the column on the row's first upsert.
    private func pinToThisRegion(_ operation: WriteRequest.Operation, row: RowState) throws(WriteError) -> WriteRequest.Operation {
        let homeColumn = TableSchema.homeRegionColumn
        if let home = row.view?[homeColumn]?.stringValue, home != region {
            throw .pinnedElsewhere(table: row.table.name, homeRegion: home)
        }
        guard case var .upsert(columns) = operation, row.table.type(of: homeColumn) != nil else { return operation }
        if let requested = columns[homeColumn], let home = requested.stringValue, home != region {
            // An existing row's home is this region (checked above); a new row's is the one named.
            if row.view?[homeColumn] != nil { throw .homeRegionFixed(table: row.table.name, homeRegion: region) }
            throw .pinnedElsewhere(table: row.table.name, homeRegion: home)
        } else if row.view?[homeColumn] == nil {
            columns[homeColumn] = .string(region)
        }
        return .upsert(columns)
    }
}
