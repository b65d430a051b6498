import GeorepLog
import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepStore
import Logging

/// Removes from an old primary's own store the writes it took after it was fenced.
///
/// A node applies its own writes to its store before acknowledging them, so an old primary
/// cut off from `georep.control` holds the writes it took past its fence point; its applier
/// then refuses them in the log, but the store already has them. When the node reads the fence,
/// this reads its own change topic past the fence point, and rebuilds every row those events
/// touched: it discards the row and applies again every event of every region's change topic
/// for it, except the fenced ones. Merges are idempotent and commutative, so events the applier
/// applies meanwhile are not lost. It needs the logs' full history of those rows (retention).
/// The store records each fence point whose rows it rebuilt, so a restart does not do it again
/// (rows would vanish for a moment while they are rebuilt).
struct FencedRowRepair {
    let region: String
    let config: GeorepConfig
    let store: any ReplicaStore
    let fences: FenceRegistry
    let logger: Logger

    /// Rebuilds the rows touched past `fence`; returns how many rows were rebuilt.
    func run(fence: FencePoint) async throws -> Int {
        guard let store = store as? any RowDiscardingStore else {
            logger.error("the store cannot rebuild rows: writes taken past the fence point stay in this region's store")
            return 0
        }
        if try await store.hasRebuiltFence(epoch: fence.epoch) {
            logger.notice("the rows written past the fence point were rebuilt before; not again", metadata: ["fence": "\(fence)"])
            return 0
        }
        let codec = ChangeEventCodec(config: config)
        let ownTopic = Topics.changes(region)
        let fencedStarts = Dictionary(uniqueKeysWithValues: fence.offsets.map { (TopicPartition(topic: ownTopic, partition: $0.key), $0.value) })
        var touched: [String: (table: String, key: [String: JSONValue])] = [:]
        try await read(cluster: config.region(id: region)?.kafka ?? config.controlCluster, from: fencedStarts) { message in
            // Region-pinned rows live in the pinned topic, which no fence concerns (their homes
            // are claimed in georep.directory).
            guard let value = message.value, let event = try? codec.decode(value, logTimestampMillis: nil),
                  fences.refusal(of: event, at: Self.position(of: message)) != nil,
                  let table = config.table(named: event.table), table.merge != .pinned else { return }
            touched[table.kafkaKey(for: event.key)] = (event.table, event.key)
        }
        if !touched.isEmpty {
            let events = try await rebuild(touched, in: store, codec: codec)
            logger.notice("rebuilt the rows written past the fence point", metadata: ["rows": "\(touched.count)", "events": "\(events)", "fence": "\(fence)"])
        }
        try await store.recordRebuiltFence(epoch: fence.epoch, rows: touched.count)
        return touched.count
    }

    /// Discards the `touched` rows (by Kafka key) and applies again every event of every
    /// region's change topic for them, except the fenced ones; returns how many events that was.
    private func rebuild(
        _ touched: [String: (table: String, key: [String: JSONValue])], in store: any RowDiscardingStore, codec: ChangeEventCodec
    ) async throws -> Int {
        for (table, rows) in Dictionary(grouping: touched.values, by: \.table) {
            try await store.discardRows(table: table, keys: rows.map(\.key))
        }
        var events: [SourcedEvent] = []
        let partitions = Int32(max(1, config.partitions))
        for (cluster, sources) in Dictionary(grouping: config.regions, by: \.kafka) {
            var starts: [TopicPartition: Int64] = [:]
            for source in sources {
                for partition in 0..<partitions { starts[TopicPartition(topic: Topics.changes(source.id), partition: partition)] = 0 }
            }
            try await read(cluster: cluster, from: starts) { message in
                guard let key = message.key.map({ String(decoding: $0, as: UTF8.self) }), touched[key] != nil,
                      let value = message.value, let event = try? codec.decode(value, logTimestampMillis: nil),
                      fences.refusal(of: event, at: Self.position(of: message)) == nil
                else { return }
                events.append(SourcedEvent(event))
            }
        }
        for start in stride(from: 0, to: events.count, by: 500) {
            _ = try await store.apply(batch: Array(events[start..<min(events.count, start + 500)]))
        }
        return events.count
    }

    /// Reads the partitions from the given offsets up to their end offsets now.
    private func read(cluster: String, from starts: [TopicPartition: Int64], _ body: (KafkaMessage) -> Void) async throws {
        let consumer = try KafkaConsumer(
            configuration: config.consumerConfiguration(cluster, groupID: "georep.repair.\(region)", clientID: "georep-repair-\(region)"), logger: logger)
        try await consumer.closing { consumer throws(KafkaError) in
            let ends = try await consumer.endOffsets(of: Array(starts.keys), timeout: .seconds(10))
            var pending = starts.filter { $0.value < ends[$0.key] ?? 0 }
            try await consumer.assign(pending.map { TopicPartitionOffset($0.key, offset: KafkaOffset($0.value)) })
            let deadline = ContinuousClock.now + .seconds(60)
            while !pending.isEmpty {
                guard ContinuousClock.now < deadline else { throw KafkaError(code: .timedOut, message: "reading \(pending.keys) for the rebuild took over 60 s") }
                for message in try await consumer.poll(maxMessages: 1000, timeout: .milliseconds(200)) where !message.isPartitionEOF {
                    let partition = message.topicPartition
                    guard let end = ends[partition], pending[partition] != nil, message.offset < end else { continue }
                    body(message)
                    if message.offset + 1 >= end { pending[partition] = nil }
                }
            }
        }
    }

    private static func position(of message: KafkaMessage) -> SourcePosition {
        SourcePosition(topic: message.topic, partition: message.partition, offset: message.offset)
    }
}
