import Foundation
public import GeorepKafka
public import GeorepModel
public import GeorepStore
public import Logging
import Synchronization

/// Turns client requests into change events of one region and publishes them (SPEC §1, §5).
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
/// - Important: Several writers for one region must not share a counter slot; give each
///   node of a region its own writer id in ``init(region:config:store:clock:producer:epoch:writerID:logger:)``.
public final class Writer: Sendable {
    /// The region whose topic this writer publishes to.
    public let region: String
    private let config: GeorepConfig
    private let store: any ReplicaStore
    let clock: HybridLogicalClock
    private let producer: KafkaProducer
    let writerID: String?
    private let currentEpoch: Atomic<UInt64>
    private let rows = KeyedSerializer()
    private let published = Mutex<[SourcePartition: Int64]>([:])
    private let localApplies: LocalApplyQueue
    private let localApplyLedger: LocalApplyLedger?
    private let logger: Logger

    /// Makes a writer of `region` publishing through `producer` (connected to that region's
    /// cluster; the caller closes it after the last write).
    ///
    /// - Parameters:
    ///   - clock: the node's clock, shared with its ``Applier``.
    ///   - epoch: the writer epoch stamped on every event (the fencing token).
    ///   - writerID: the counter slot; nil for the region's own slot (one writer per region).
    ///   - localApplyLedger: shared with the node's applier (``Applier/Settings/localApplyLedger``)
    ///     so that each of the region's events is merged into the store once; nil: twice.
    public init(
        region: String, config: GeorepConfig, store: any ReplicaStore, clock: HybridLogicalClock,
        producer: KafkaProducer, epoch: UInt64, writerID: String? = nil, localApplyLedger: LocalApplyLedger? = nil, logger: Logger
    ) {
        self.region = region
        self.config = config
        self.store = store
        self.clock = clock
        self.producer = producer
        self.writerID = writerID
        self.currentEpoch = Atomic(epoch)
        self.localApplies = LocalApplyQueue(store: store, logger: logger)
        self.localApplyLedger = localApplyLedger
        self.logger = logger
    }

    /// The epoch stamped on new events.
    public var epoch: UInt64 {
        get { currentEpoch.load(ordering: .relaxed) }
        set { currentEpoch.store(newValue, ordering: .relaxed) }
    }

    /// Publishes the event for `request`, waits for Kafka's acknowledgement, applies it
    /// locally and returns its receipt.
    ///
    /// - Throws: ``WriteError`` naming the problem; a refused request writes nothing.
    public func write(_ request: WriteRequest) async throws(WriteError) -> WriteReceipt {
        guard let table = config.table(named: request.table) else { throw .unknownTable(request.table) }
        try Self.checkNotEmpty(request, table: table.name)
        do {
            try table.checkKey(request.key)
        } catch {
            throw .rejected(error)
        }
        return try await rows.withKey(table.kafkaKey(for: request.key)) { () throws(WriteError) in
            try await writeSerialized(request, table: table)
        }
    }

    private func writeSerialized(_ request: WriteRequest, table: TableSchema) async throws(WriteError) -> WriteReceipt {
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
        let event = try makeEvent(request, row: row)
        let topic = table.merge == .pinned ? Topics.pinned(region) : Topics.changes(region)
        let report = try await publish(event, table: table, to: topic)
        let position = SourcePosition(topic: topic, partition: report.partition, offset: report.offset)
        if localApplyLedger?.isAppliedByApplier(position) != true, await localApplies.apply(event) {
            localApplyLedger?.writerApplied(position, hlc: event.hlc)
        }
        return WriteReceipt(
            token: WriteToken(region: region, partition: report.partition, offset: report.offset), position: position, event: event)
    }

    /// Publishes `event` to `topic` (key `<table>/<key>`, headers `georep-hlc` and
    /// `georep-origin`) and waits for Kafka's acknowledgement, without applying it locally:
    /// what an application's own producer does (the applier applies it from the log).
    public func publish(_ event: ChangeEvent, table: TableSchema, to topic: String) async throws(WriteError) -> KafkaDeliveryReport {
        let record = KafkaRecord(
            topic: topic, key: table.kafkaKey(for: event.key), value: event.encodedJSON(),
            headers: [KafkaHeader(name: GeorepHeader.hlc, string: event.hlc.description),
                      KafkaHeader(name: GeorepHeader.origin, string: region)])
        let report: KafkaDeliveryReport
        do {
            report = try await producer.send(record)
        } catch {
            throw .notAcknowledged(KafkaErrorDescription(message: error.description, isRetriable: error.isRetriable))
        }
        if let error = report.error {
            throw .notAcknowledged(KafkaErrorDescription(message: error.description, isRetriable: error.isRetriable))
        }
        let partition = SourcePartition(topic: topic, partition: report.partition)
        published.withLock { $0[partition] = max($0[partition] ?? -1, report.offset) }
        return report
    }

    /// The highest offset this writer has published to `partition`, noted as soon as Kafka
    /// acknowledged it, before the write is applied to the local store: a read that sees a local
    /// write is never described by a lower position.
    public func lastPublishedOffset(_ partition: SourcePartition) -> Int64? {
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
    private func makeEvent(_ request: WriteRequest, row: RowState) throws(WriteError) -> ChangeEvent {
        var operation = request.operation
        if row.table.merge == .pinned { operation = try pinToThisRegion(operation, row: row) }
        let context = WriteContext(origin: region, hlc: clock.now(), epoch: epoch, writer: writerID)
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
        if let requested = columns[homeColumn] {
            if let home = requested.stringValue, home != region { throw .pinnedElsewhere(table: row.table.name, homeRegion: home) }
        } else if row.view?[homeColumn] == nil {
            columns[homeColumn] = .string(region)
        }
        return .upsert(columns)
    }
}
