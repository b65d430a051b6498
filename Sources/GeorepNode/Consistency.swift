import GeorepLog
import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import Synchronization

/// The "wrote recently" flag of sticky reads (`docs/http-api.md#sticky-reads`): for a while
/// after a user's write, that user's reads at this node go to the region that published the
/// write (the primary, or the origin region), as web stacks route reads to the primary after
/// a write.
final class StickyUsers: Sendable {
    private let window: Duration
    private let entries = Mutex<[String: (region: String, until: ContinuousClock.Instant)]>([:])

    init(window: Duration) {
        self.window = window
    }

    /// Notes that `user`'s write was published by `region`.
    func noteWrite(user: String, region: String) {
        let now = ContinuousClock.now
        entries.withLock { entries in
            if entries.count > 100_000 { entries = entries.filter { $0.value.until > now } }
            entries[user] = (region, now + window)
        }
    }

    /// The region that must serve `user`'s reads now, if the user wrote recently.
    func region(for user: String) -> String? {
        let now = ContinuousClock.now
        return entries.withLock { entries in
            guard let entry = entries[user] else { return nil }
            if entry.until <= now {
                entries[user] = nil
                return nil
            }
            return entry.region
        }
    }
}

extension RegionNode {
    /// The tokens that describe what a read of `key` reflected: for every source region, the
    /// last applied offset of the partition that holds the row's events (every region's producer
    /// places a key in the same partition). A client that sends the highest tokens it has seen
    /// with its next read, at any region, never reads older state (monotonic reads).
    func readTokens(table: TableSchema, key: [String: JSONValue]) -> [WriteToken] {
        let partition = KafkaPartitioner.partition(of: table.kafkaKey(for: key), partitions: max(1, config.partitions))
        let applied = engine.applier.progress.appliedOffsets
        return config.regions.compactMap { source in
            let sourcePartition = TopicPartition(topic: Topics.changes(source.id), partition: partition)
            var last = (applied[sourcePartition] ?? 0) - 1
            if source.id == region { last = max(last, engine.writer.lastPublishedOffset(sourcePartition) ?? -1) }
            return last >= 0 ? WriteToken(region: source.id, partition: partition, offset: last) : nil
        }
    }
}
